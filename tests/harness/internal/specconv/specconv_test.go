package specconv

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/hclspec"
)

func TestParseType(t *testing.T) {
	cases := map[string]cty.Type{
		"string":                                 cty.String,
		"number":                                 cty.Number,
		"bool":                                   cty.Bool,
		"any":                                    cty.DynamicPseudoType,
		"list(map(string))":                      cty.List(cty.Map(cty.String)),
		"set(number)":                            cty.Set(cty.Number),
		"tuple([string, bool])":                  cty.Tuple([]cty.Type{cty.String, cty.Bool}),
		"object({a = string, b = list(number)})": cty.Object(map[string]cty.Type{"a": cty.String, "b": cty.List(cty.Number)}),
	}
	for expr, want := range cases {
		got, err := ParseType(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if !got.Equals(want) {
			t.Errorf("%s: got %#v", expr, got)
		}
	}
	for _, bad := range []string{"", `"string"`, "lisst(string)", "list("} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("%q should be rejected", bad)
		}
	}
}

func TestEvalLiteral(t *testing.T) {
	cases := map[string]cty.Value{
		"true":                cty.True,
		"5":                   cty.NumberIntVal(5),
		`"private"`:           cty.StringVal("private"),
		`upper("x")`:          cty.StringVal("X"),
		`length(["a", "b"])`:  cty.NumberIntVal(2),
		"[]":                  cty.EmptyTupleVal,
		"{ enabled = false }": cty.ObjectVal(map[string]cty.Value{"enabled": cty.False}),
	}
	for expr, want := range cases {
		got, err := EvalLiteral(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if !got.RawEquals(want) {
			t.Errorf("%s: got %#v", expr, got)
		}
	}
	if _, err := EvalLiteral(`file("/etc/passwd")`); err == nil {
		t.Error("file() is not an allowed function")
	}
	if _, err := EvalLiteral("var.x"); err == nil {
		t.Error("variables are not allowed in literals")
	}
}

func spec(b any) *hclspec.Spec {
	switch v := b.(type) {
	case *hclspec.Attr:
		return &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: v}}
	case *hclspec.Block:
		return &hclspec.Spec{Block: &hclspec.Spec_BlockValue{BlockValue: v}}
	case *hclspec.BlockAttrs:
		return &hclspec.Spec{Block: &hclspec.Spec_BlockAttrs{BlockAttrs: v}}
	case *hclspec.BlockSet:
		return &hclspec.Spec{Block: &hclspec.Spec_BlockSet{BlockSet: v}}
	case *hclspec.BlockMap:
		return &hclspec.Spec{Block: &hclspec.Spec_BlockMap{BlockMap: v}}
	case *hclspec.Array:
		return &hclspec.Spec{Block: &hclspec.Spec_Array{Array: v}}
	case *hclspec.Object:
		return &hclspec.Spec{Block: &hclspec.Spec_Object{Object: v}}
	case *hclspec.Default:
		return &hclspec.Spec{Block: &hclspec.Spec_Default{Default: v}}
	case *hclspec.Literal:
		return &hclspec.Spec{Block: &hclspec.Spec_Literal{Literal: v}}
	}
	panic("unknown")
}

func TestConvertShapes(t *testing.T) {
	nested := spec(&hclspec.Object{Attributes: map[string]*hclspec.Spec{"x": spec(&hclspec.Attr{Type: "string"})}})
	root := spec(&hclspec.Object{Attributes: map[string]*hclspec.Spec{
		"image":   spec(&hclspec.Attr{Type: "string", Required: true}), // name implied by key
		"auth":    spec(&hclspec.Block{Nested: nested}),
		"labels":  spec(&hclspec.BlockAttrs{Type: "string"}),
		"tags":    spec(&hclspec.BlockSet{Name: "tag", MinItems: 1, Nested: nested}),
		"ports":   spec(&hclspec.BlockMap{Name: "port", Labels: []string{"label"}, Nested: nested}),
		"pair":    spec(&hclspec.Array{Values: []*hclspec.Spec{spec(&hclspec.Literal{Value: "1"}), spec(&hclspec.Literal{Value: `"a"`})}}),
		"timeout": spec(&hclspec.Default{Primary: spec(&hclspec.Attr{Type: "string"}), Default: spec(&hclspec.Literal{Value: `"5s"`})}),
	}})
	dec, err := Convert(root)
	if err != nil {
		t.Fatal(err)
	}
	obj := dec.(hcldec.ObjectSpec)
	if a := obj["image"].(*hcldec.AttrSpec); a.Name != "image" || !a.Required || a.Type != cty.String {
		t.Errorf("image = %#v", a)
	}
	if b := obj["auth"].(*hcldec.BlockSpec); b.TypeName != "auth" {
		t.Errorf("auth = %#v", b)
	}
	if b := obj["labels"].(*hcldec.BlockAttrsSpec); b.TypeName != "labels" || b.ElementType != cty.String {
		t.Errorf("labels = %#v", b)
	}
	if b := obj["tags"].(*hcldec.BlockSetSpec); b.TypeName != "tag" || b.MinItems != 1 {
		t.Errorf("tags = %#v", b)
	}
	if b := obj["ports"].(*hcldec.BlockMapSpec); b.TypeName != "port" || b.LabelNames[0] != "label" {
		t.Errorf("ports = %#v", b)
	}
	if b := obj["pair"].(hcldec.TupleSpec); len(b) != 2 {
		t.Errorf("pair = %#v", b)
	}
	d := obj["timeout"].(*hcldec.DefaultSpec)
	if d.Primary.(*hcldec.AttrSpec).Name != "timeout" || !d.Default.(*hcldec.LiteralSpec).Value.RawEquals(cty.StringVal("5s")) {
		t.Errorf("timeout = %#v", d)
	}
	want := cty.Object(map[string]cty.Type{
		"image": cty.String, "auth": cty.Object(map[string]cty.Type{"x": cty.String}),
		"labels": cty.Map(cty.String), "tags": cty.Set(cty.Object(map[string]cty.Type{"x": cty.String})),
		"ports": cty.Map(cty.Object(map[string]cty.Type{"x": cty.String})),
		"pair":  cty.Tuple([]cty.Type{cty.Number, cty.String}), "timeout": cty.String,
	})
	if got := hcldec.ImpliedType(dec); !got.Equals(want) {
		t.Errorf("implied type = %#v", got)
	}
}

func TestConvertErrors(t *testing.T) {
	cases := map[string]*hclspec.Spec{
		"spec is nil":            nil,
		"no variant":             {},
		"name is empty":          spec(&hclspec.Attr{Type: "string"}),
		"type is empty":          spec(&hclspec.Object{Attributes: map[string]*hclspec.Spec{"a": spec(&hclspec.Attr{})}}),
		"nested spec is missing": spec(&hclspec.Object{Attributes: map[string]*hclspec.Spec{"b": spec(&hclspec.Block{})}}),
		"at least one label":     spec(&hclspec.BlockMap{Name: "m", Nested: spec(&hclspec.Attr{Name: "x", Type: "string"})}),
		"must not contain 'any'": spec(&hclspec.BlockMap{Name: "m", Labels: []string{"l"},
			Nested: spec(&hclspec.Attr{Name: "x", Type: "any"})}),
		"literal": spec(&hclspec.Literal{Value: "nope("}),
	}
	for want, s := range cases {
		_, err := Convert(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error containing %q, got %v", want, err)
		}
	}
}
