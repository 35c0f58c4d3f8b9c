package main

/*
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"unsafe"
)

// writeResult encodes res (or err) as JSON into a malloc'd buffer and returns the status.
func writeResult(res any, err error, out **C.uint8_t, outLen *C.size_t) int32 {
	status := int32(statusOK)
	var body []byte
	if err != nil {
		status = statusOf(err)
		body = errorBody(status, err)
	} else {
		var merr error
		body, merr = json.Marshal(res)
		if merr != nil {
			status = statusInternal
			body = errorBody(status, fmt.Errorf("encode result: %w", merr))
		}
	}
	setOut(body, out, outLen)
	return status
}

func errorBody(status int32, err error) []byte {
	b, _ := json.Marshal(map[string]string{"code": statusName(status), "message": err.Error()})
	return b
}

// setOut copies body into C memory owned by the caller (released with gb_free).
func setOut(body []byte, out **C.uint8_t, outLen *C.size_t) {
	if out == nil || outLen == nil {
		return
	}
	n := len(body)
	p := C.malloc(C.size_t(n + 1))
	if n > 0 {
		C.memcpy(p, unsafe.Pointer(&body[0]), C.size_t(n))
	}
	*(*byte)(unsafe.Add(p, n)) = 0
	*out = (*C.uint8_t)(p)
	*outLen = C.size_t(n)
}

// recoverExport turns a panic in an export into GB_E_PANIC with the panic text.
func recoverExport(status *C.int32_t, out **C.uint8_t, outLen *C.size_t) {
	r := recover()
	if r == nil {
		return
	}
	*status = C.int32_t(statusPanic)
	err := fmt.Errorf("panic in gobridge: %v\n%s", r, debug.Stack())
	func() {
		defer func() { _ = recover() }()
		setOut(errorBody(statusPanic, err), out, outLen)
	}()
}

// callThroughExport runs gb_call as a C caller would (C buffers in and out, gb_free after).
// Go tests use it to exercise the export path, including panic recovery.
func callThroughExport(method string, req []byte, timeoutMs int64) (int32, []byte) {
	m := C.CBytes([]byte(method))
	defer C.free(m)
	r := C.CBytes(req)
	defer C.free(r)
	var out *C.uint8_t
	var outLen C.size_t
	st := gb_call(0, (*C.uint8_t)(m), C.size_t(len(method)), (*C.uint8_t)(r), C.size_t(len(req)),
		C.int64_t(timeoutMs), &out, &outLen)
	body := C.GoBytes(unsafe.Pointer(out), C.int(outLen))
	gb_free(unsafe.Pointer(out))
	return int32(st), body
}
