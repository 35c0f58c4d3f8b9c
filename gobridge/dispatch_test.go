package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestTakeNamespace(t *testing.T) {
	cases := []struct {
		name, req, wantNS string
		wantReq           map[string]any // nil: unchanged
		wantStatus        int32
	}{
		{name: "no namespace", req: `{"client":1,"id":"a"}`},
		{name: "override", req: `{"client":1,"namespace":"other","id":"a"}`, wantNS: "other",
			wantReq: map[string]any{"client": float64(1), "id": "a"}},
		{name: "connect keeps its own", req: `{"address":"/x","namespace":"ns"}`},
		{name: "nested key is not the field", req: `{"client":1,"labels":{"namespace":"x"}}`},
		{name: "invalid name", req: `{"client":1,"namespace":"bad name"}`, wantStatus: statusInvalidArgument},
		{name: "empty name", req: `{"client":1,"namespace":""}`, wantStatus: statusInvalidArgument},
		{name: "not a string", req: `{"client":1,"namespace":7}`, wantStatus: statusInvalidArgument},
	}
	for _, tc := range cases {
		out, ns, err := takeNamespace([]byte(tc.req))
		if tc.wantStatus != 0 {
			if statusOf(err) != tc.wantStatus {
				t.Errorf("%s: err = %v, want %s", tc.name, err, statusName(tc.wantStatus))
			}
			continue
		}
		if err != nil || ns != tc.wantNS {
			t.Errorf("%s: ns = %q, err = %v; want %q", tc.name, ns, err, tc.wantNS)
			continue
		}
		if tc.wantReq == nil {
			if string(out) != tc.req {
				t.Errorf("%s: request changed to %s", tc.name, out)
			}
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil || !reflect.DeepEqual(got, tc.wantReq) {
			t.Errorf("%s: request = %s, want %v", tc.name, out, tc.wantReq)
		}
	}
}

func TestNamespaceOnlyWithClient(t *testing.T) {
	// Without "client" the field is not taken, so strict decoding refuses it by name.
	_, err := dispatch(0, "debug.sleep", []byte(`{"ms":1,"namespace":"x"}`), 0)
	if statusOf(err) != statusInvalidArgument {
		t.Fatalf("err = %v, want INVALID_ARGUMENT", err)
	}
}
