// Package confdec decodes a `config {}` block the way the Nomad client does
// (fact sheet §9): the block is first turned into the generic map Nomad's job
// parser stores (attributes evaluated, nested blocks as lists of maps), that map
// is serialised to JSON and parsed back as an HCL JSON body, the body is decoded
// with the plugin's spec via hcldec, and the resulting cty value is encoded as
// cty msgpack with its own type.
package confdec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

// Result is a decoded config block.
type Result struct {
	Value   cty.Value
	Msgpack []byte
}

// JSONValue renders the decoded value as plain JSON.
func (r Result) JSONValue() (json.RawMessage, error) {
	return ctyjson.SimpleJSONValue{Value: r.Value}.MarshalJSON()
}

// JSONType renders the value's cty type in cty's JSON type notation.
func (r Result) JSONType() (json.RawMessage, error) {
	return ctyjson.MarshalType(r.Value.Type())
}

// Decode decodes body (nil = the block is absent) with spec. ctx supplies the
// variables and functions available to expressions (nil for agent config).
func Decode(body *hclsyntax.Body, spec hcldec.Spec, ctx *hcl.EvalContext) (Result, error) {
	generic := map[string]any{}
	if body != nil {
		var diags hcl.Diagnostics
		generic, diags = BodyToGeneric(body, ctx)
		if diags.HasErrors() {
			return Result{}, DiagError(diags)
		}
	}
	src, err := json.Marshal(generic)
	if err != nil {
		return Result{}, fmt.Errorf("config to JSON: %w", err)
	}
	return DecodeJSON(src, spec, ctx)
}

// DecodeJSON decodes an HCL JSON body (the form Nomad keeps a config block in).
func DecodeJSON(src []byte, spec hcldec.Spec, ctx *hcl.EvalContext) (Result, error) {
	file, diags := hcljson.Parse(src, "config.json")
	if diags.HasErrors() {
		return Result{}, DiagError(diags)
	}
	val, diags := hcldec.Decode(file.Body, spec, ctx)
	if diags.HasErrors() {
		return Result{}, DiagError(diags)
	}
	mp, err := Marshal(val)
	if err != nil {
		return Result{}, err
	}
	return Result{Value: val, Msgpack: mp}, nil
}

// DiagError renders every error diagnostic ("summary: detail"), joined by
// "; ". JSON-body positions are left out: they point into our own JSON text.
func DiagError(diags hcl.Diagnostics) error {
	var parts []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject != nil && !strings.HasSuffix(d.Subject.Filename, ".json") {
			msg = d.Subject.String() + ": " + msg
		}
		parts = append(parts, msg)
	}
	return errors.New(strings.Join(parts, "; "))
}

// Marshal encodes v as cty msgpack with its own type, as Nomad does (§9 step 3).
func Marshal(v cty.Value) ([]byte, error) {
	b, err := ctymsgpack.Marshal(v, v.Type())
	if err != nil {
		return nil, fmt.Errorf("cty msgpack: %w", err)
	}
	return b, nil
}

// BodyToGeneric turns a native-syntax body into the generic map Nomad's job
// parser stores: attributes become their evaluated values, each nested block
// `name "l1" "l2" { ... }` becomes an element of the list under `name`, nested
// by label ({"l1": {"l2": {...}}}).
func BodyToGeneric(body *hclsyntax.Body, ctx *hcl.EvalContext) (map[string]any, hcl.Diagnostics) {
	out := map[string]any{}
	var diags hcl.Diagnostics
	for name, attr := range body.Attributes {
		v, d := attr.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		raw, err := valueJSON(v)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unsupported value",
				Detail: fmt.Sprintf("attribute %q: %s", name, err), Subject: attr.SrcRange.Ptr(),
			})
			continue
		}
		out[name] = raw
	}
	for _, blk := range body.Blocks {
		if _, isAttr := body.Attributes[blk.Type]; isAttr {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate name",
				Detail: fmt.Sprintf("%q is both an attribute and a block", blk.Type), Subject: blk.TypeRange.Ptr(),
			})
			continue
		}
		inner, d := BodyToGeneric(blk.Body, ctx)
		diags = append(diags, d...)
		var item any = inner
		for i := len(blk.Labels) - 1; i >= 0; i-- {
			item = map[string]any{blk.Labels[i]: item}
		}
		list, _ := out[blk.Type].([]any)
		out[blk.Type] = append(list, item)
	}
	return out, diags
}

// valueJSON renders v as JSON, escaping template sequences in strings so the
// second (HCL JSON) evaluation leaves already-evaluated text alone.
func valueJSON(v cty.Value) (json.RawMessage, error) {
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("value is not known")
	}
	esc, err := cty.Transform(v, func(_ cty.Path, v cty.Value) (cty.Value, error) {
		if v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			s := strings.ReplaceAll(v.AsString(), "${", "$${")
			s = strings.ReplaceAll(s, "%{", "%%{")
			return cty.StringVal(s), nil
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return ctyjson.SimpleJSONValue{Value: esc}.MarshalJSON()
}
