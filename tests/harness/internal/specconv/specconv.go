// Package specconv turns the hclspec.Spec protobuf tree a plugin returns from
// ConfigSchema / TaskConfigSchema into an hcldec.Spec, the way the Nomad client
// does before it decodes an agent or job config block.
package specconv

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/hclspec"
)

// LiteralFunctions are the functions a Literal expression may call (fact sheet §8).
func LiteralFunctions() map[string]function.Function {
	return map[string]function.Function{
		"abs":        stdlib.AbsoluteFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"concat":     stdlib.ConcatFunc,
		"hasindex":   stdlib.HasIndexFunc,
		"int":        stdlib.IntFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"length":     stdlib.LengthFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"min":        stdlib.MinFunc,
		"reverse":    stdlib.ReverseFunc,
		"strlen":     stdlib.StrlenFunc,
		"substr":     stdlib.SubstrFunc,
		"upper":      stdlib.UpperFunc,
	}
}

// Convert returns the hcldec form of s. A nil spec is an error: Nomad refuses a
// task whose driver returns no TaskConfigSchema.
func Convert(s *hclspec.Spec) (hcldec.Spec, error) {
	if s == nil {
		return nil, fmt.Errorf("spec is nil")
	}
	return convert(s, "", "spec")
}

// convert handles one node. implied is the Object key the node sits under: it
// names Attr/Block* specs whose own name is empty. path is for error messages.
func convert(s *hclspec.Spec, implied, path string) (hcldec.Spec, error) {
	if s == nil {
		return nil, fmt.Errorf("%s: spec is nil", path)
	}
	name := func(n string) (string, error) {
		if n != "" {
			return n, nil
		}
		if implied == "" {
			return "", fmt.Errorf("%s: name is empty and the spec is not under an object key", path)
		}
		return implied, nil
	}

	switch b := s.Block.(type) {
	case *hclspec.Spec_Object:
		obj := hcldec.ObjectSpec{}
		keys := make([]string, 0, len(b.Object.GetAttributes()))
		for k := range b.Object.GetAttributes() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child, err := convert(b.Object.Attributes[k], k, path+"."+k)
			if err != nil {
				return nil, err
			}
			obj[k] = child
		}
		return obj, nil

	case *hclspec.Spec_Array:
		tup := hcldec.TupleSpec{}
		for i, v := range b.Array.GetValues() {
			child, err := convert(v, "", fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			tup = append(tup, child)
		}
		return tup, nil

	case *hclspec.Spec_Attr:
		n, err := name(b.Attr.GetName())
		if err != nil {
			return nil, err
		}
		ty, err := ParseType(b.Attr.GetType())
		if err != nil {
			return nil, fmt.Errorf("%s: attribute %q: %w", path, n, err)
		}
		return &hcldec.AttrSpec{Name: n, Type: ty, Required: b.Attr.GetRequired()}, nil

	case *hclspec.Spec_BlockValue:
		n, err := name(b.BlockValue.GetName())
		if err != nil {
			return nil, err
		}
		nested, err := convertNested(b.BlockValue.GetNested(), path+"."+n)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSpec{TypeName: n, Nested: nested, Required: b.BlockValue.GetRequired()}, nil

	case *hclspec.Spec_BlockAttrs:
		n, err := name(b.BlockAttrs.GetName())
		if err != nil {
			return nil, err
		}
		ty, err := ParseType(b.BlockAttrs.GetType())
		if err != nil {
			return nil, fmt.Errorf("%s: block_attrs %q: %w", path, n, err)
		}
		return &hcldec.BlockAttrsSpec{TypeName: n, ElementType: ty, Required: b.BlockAttrs.GetRequired()}, nil

	case *hclspec.Spec_BlockList:
		n, err := name(b.BlockList.GetName())
		if err != nil {
			return nil, err
		}
		nested, err := convertNested(b.BlockList.GetNested(), path+"."+n)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockListSpec{
			TypeName: n, Nested: nested,
			MinItems: int(b.BlockList.GetMinItems()), MaxItems: int(b.BlockList.GetMaxItems()),
		}, nil

	case *hclspec.Spec_BlockSet:
		n, err := name(b.BlockSet.GetName())
		if err != nil {
			return nil, err
		}
		nested, err := convertNested(b.BlockSet.GetNested(), path+"."+n)
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSetSpec{
			TypeName: n, Nested: nested,
			MinItems: int(b.BlockSet.GetMinItems()), MaxItems: int(b.BlockSet.GetMaxItems()),
		}, nil

	case *hclspec.Spec_BlockMap:
		n, err := name(b.BlockMap.GetName())
		if err != nil {
			return nil, err
		}
		if len(b.BlockMap.GetLabels()) == 0 {
			return nil, fmt.Errorf("%s: block_map %q needs at least one label", path, n)
		}
		nested, err := convertNested(b.BlockMap.GetNested(), path+"."+n)
		if err != nil {
			return nil, err
		}
		// hcldec panics on dynamic types inside a block map; fail clearly instead.
		if t := hcldec.ImpliedType(nested); t.HasDynamicTypes() {
			return nil, fmt.Errorf("%s: block_map %q: nested spec must not contain 'any' types", path, n)
		}
		return &hcldec.BlockMapSpec{TypeName: n, LabelNames: b.BlockMap.GetLabels(), Nested: nested}, nil

	case *hclspec.Spec_Default:
		primary, err := convert(b.Default.GetPrimary(), implied, path+"(default.primary)")
		if err != nil {
			return nil, err
		}
		def, err := convert(b.Default.GetDefault(), implied, path+"(default.default)")
		if err != nil {
			return nil, err
		}
		return &hcldec.DefaultSpec{Primary: primary, Default: def}, nil

	case *hclspec.Spec_Literal:
		v, err := EvalLiteral(b.Literal.GetValue())
		if err != nil {
			return nil, fmt.Errorf("%s: literal %q: %w", path, b.Literal.GetValue(), err)
		}
		return &hcldec.LiteralSpec{Value: v}, nil

	case nil:
		return nil, fmt.Errorf("%s: spec has no variant set", path)
	default:
		return nil, fmt.Errorf("%s: unknown spec variant %T", path, b)
	}
}

func convertNested(s *hclspec.Spec, path string) (hcldec.Spec, error) {
	if s == nil {
		return nil, fmt.Errorf("%s: nested spec is missing", path)
	}
	return convert(s, "", path)
}

// ParseType parses an unquoted HCL type expression such as list(map(string)).
func ParseType(expr string) (cty.Type, error) {
	if expr == "" {
		return cty.NilType, fmt.Errorf("type is empty")
	}
	e, diags := hclsyntax.ParseExpression([]byte(expr), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", expr, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(e)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", expr, diags.Error())
	}
	return ty, nil
}

// EvalLiteral evaluates a Literal's HCL expression text with no variables and
// the allowed functions.
func EvalLiteral(text string) (cty.Value, error) {
	e, diags := hclsyntax.ParseExpression([]byte(text), "literal", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s", diags.Error())
	}
	v, diags := e.Value(&hcl.EvalContext{Functions: LiteralFunctions()})
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s", diags.Error())
	}
	return v, nil
}
