package confdec

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/specconv"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/hclspec"
)

func attr(name, ty string, required bool) *hclspec.Spec {
	return &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: &hclspec.Attr{Name: name, Type: ty, Required: required}}}
}

func object(kv map[string]*hclspec.Spec) *hclspec.Spec {
	return &hclspec.Spec{Block: &hclspec.Spec_Object{Object: &hclspec.Object{Attributes: kv}}}
}

func withDefault(primary *hclspec.Spec, literal string) *hclspec.Spec {
	return &hclspec.Spec{Block: &hclspec.Spec_Default{Default: &hclspec.Default{
		Primary: primary,
		Default: &hclspec.Spec{Block: &hclspec.Spec_Literal{Literal: &hclspec.Literal{Value: literal}}},
	}}}
}

// parseConfig parses `config { ... }` text and returns the block's body.
func parseConfig(t *testing.T, src string) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte("config {\n"+src+"\n}\n"), "job.nomad", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diags.Error())
	}
	return f.Body.(*hclsyntax.Body).Blocks[0].Body
}

func decode(t *testing.T, spec *hclspec.Spec, src string, ctx *hcl.EvalContext) (Result, error) {
	t.Helper()
	dec, err := specconv.Convert(spec)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	return Decode(parseConfig(t, src), dec, ctx)
}

func mustHex(t *testing.T, r Result, err error) string {
	t.Helper()
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return hex.EncodeToString(r.Msgpack)
}

func imageArgs() *hclspec.Spec {
	return object(map[string]*hclspec.Spec{
		"image": attr("image", "string", true),
		"args":  attr("args", "list(string)", false),
	})
}

func TestWorkedExampleFromFactSheet(t *testing.T) {
	r, err := decode(t, imageArgs(), `image = "redis"`, nil)
	got := mustHex(t, r, err)
	// 82 a4 "args" c0 a5 "image" a5 "redis", as in fact sheet §10.
	want := strings.ReplaceAll("82 a4 61 72 67 73 c0 a5 69 6d 61 67 65 a5 72 65 64 69 73", " ", "")
	if got != want {
		t.Fatalf("msgpack = %s, want %s", got, want)
	}
}

func TestListAttribute(t *testing.T) {
	r, err := decode(t, imageArgs(), `image = "redis"
args = ["a"]`, nil)
	got := mustHex(t, r, err)
	if !strings.HasPrefix(got, "82a46172677391a161") {
		t.Fatalf("args should encode as 91 a1 61, got %s", got)
	}
}

func TestDynamicWrapper(t *testing.T) {
	b, err := ctymsgpack.Marshal(cty.StringVal("x"), cty.DynamicPseudoType)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != "92c40822737472696e6722a178" {
		t.Fatalf("dynamic wrapper = %s", got)
	}
}

func TestRequiredAttributeMissing(t *testing.T) {
	_, err := decode(t, imageArgs(), `args = ["a"]`, nil)
	if err == nil || !strings.Contains(err.Error(), "image") {
		t.Fatalf("want an error naming image, got %v", err)
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	_, err := decode(t, imageArgs(), `image = "redis"
imagee = "x"`, nil)
	if err == nil || !strings.Contains(err.Error(), "imagee") {
		t.Fatalf("want an error naming imagee, got %v", err)
	}
}

func TestWrongTypeRejected(t *testing.T) {
	_, err := decode(t, imageArgs(), `image = "redis"
args = "notalist"`, nil)
	if err == nil {
		t.Fatal("string for list(string) should fail")
	}
}

func TestDefaultsAppliedToAbsentBlock(t *testing.T) {
	spec := object(map[string]*hclspec.Spec{
		"enabled":        withDefault(attr("enabled", "bool", false), "true"),
		"stats_interval": withDefault(attr("stats_interval", "string", false), `"1s"`),
		"namespace":      withDefault(attr("", "string", false), `upper("nomad")`),
		"extra":          attr("extra", "map(string)", false),
	})
	dec, err := specconv.Convert(spec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(nil, dec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := cty.ObjectVal(map[string]cty.Value{
		"enabled":        cty.True,
		"stats_interval": cty.StringVal("1s"),
		"namespace":      cty.StringVal("NOMAD"),
		"extra":          cty.NullVal(cty.Map(cty.String)),
	})
	if !r.Value.RawEquals(want) {
		t.Fatalf("value = %#v", r.Value)
	}
}

func TestBlockSyntaxForListOfMaps(t *testing.T) {
	spec := object(map[string]*hclspec.Spec{
		"image":  attr("image", "string", true),
		"labels": attr("labels", "list(map(string))", false),
	})
	r, err := decode(t, spec, `image = "x"
labels {
  a = "1"
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Value.GetAttr("labels").Index(cty.NumberIntVal(0)).Index(cty.StringVal("a"))
	if !got.RawEquals(cty.StringVal("1")) {
		t.Fatalf("labels = %#v", r.Value.GetAttr("labels"))
	}
}

func TestBlockListAndBlockMap(t *testing.T) {
	mount := object(map[string]*hclspec.Spec{
		"target":   attr("target", "string", true),
		"readonly": withDefault(attr("readonly", "bool", false), "false"),
	})
	spec := object(map[string]*hclspec.Spec{
		"mount": {Block: &hclspec.Spec_BlockList{BlockList: &hclspec.BlockList{Nested: mount, MaxItems: 2}}},
		"port": {Block: &hclspec.Spec_BlockMap{BlockMap: &hclspec.BlockMap{
			Name: "port", Labels: []string{"label"},
			Nested: object(map[string]*hclspec.Spec{"to": attr("to", "number", true)}),
		}}},
	})
	r, err := decode(t, spec, `
mount { target = "/a" }
mount {
  target = "/b"
  readonly = true
}
port "http" { to = 80 }
port "db" { to = 5432 }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	mounts := r.Value.GetAttr("mount")
	if mounts.LengthInt() != 2 || !mounts.Index(cty.NumberIntVal(1)).GetAttr("readonly").True() {
		t.Fatalf("mount = %#v", mounts)
	}
	ports := r.Value.GetAttr("port")
	if !ports.Index(cty.StringVal("db")).GetAttr("to").RawEquals(cty.NumberIntVal(5432)) {
		t.Fatalf("port = %#v", ports)
	}

	_, err = decode(t, spec, `
mount { target = "/a" }
mount { target = "/b" }
mount { target = "/c" }`, nil)
	if err == nil {
		t.Fatal("three mounts exceed max_items 2")
	}
}

func TestNumbersFollowCtyRules(t *testing.T) {
	spec := object(map[string]*hclspec.Spec{"n": attr("n", "list(number)", true)})
	r, err := decode(t, spec, `n = [1, -1, 1.5, 0.1, 18446744073709551616]`, nil)
	got := mustHex(t, r, err)
	// 81 a1 6e 95 | 01 | ff | cb 3ff8000000000000 | a3 "0.1" | b4 "18446744073709551616"
	want := "81a16e9501ffcb3ff8000000000000a3302e31b4" + hex.EncodeToString([]byte("18446744073709551616"))
	if got != want {
		t.Fatalf("msgpack = %s\nwant      %s", got, want)
	}
}

func TestAnyIsEncodedWithConcreteType(t *testing.T) {
	spec := object(map[string]*hclspec.Spec{"v": attr("v", "any", false), "w": attr("w", "any", false)})
	r, err := decode(t, spec, `v = "x"`, nil)
	got := mustHex(t, r, err)
	// {"v": "x", "w": nil}: no dynamic wrapper around "x".
	if got != "82a176a178a177c0" {
		t.Fatalf("msgpack = %s", got)
	}
}

func TestInterpolationUsesTaskVariables(t *testing.T) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"NOMAD_TASK_DIR": cty.StringVal("/local")}}
	r, err := decode(t, imageArgs(), `image = "redis"
args = ["${NOMAD_TASK_DIR}/x", "$${literal}"]`, ctx)
	if err != nil {
		t.Fatal(err)
	}
	args := r.Value.GetAttr("args")
	if args.Index(cty.NumberIntVal(0)).AsString() != "/local/x" || args.Index(cty.NumberIntVal(1)).AsString() != "${literal}" {
		t.Fatalf("args = %#v", args)
	}
}
