// Package main is libgobridge, a c-shared library over the containerd Go client.
//
// ABI rules (the contract is gobridge.h and CONTRACT.md; this file holds every export):
//   - Only fixed-width C types cross; Go values cross as runtime/cgo.Handle ids (gb_handle).
//   - Every export returns an int32 status (GB_OK = 0) and recovers panics into GB_E_PANIC.
//     Nothing here calls os.Exit or log.Fatal.
//   - Results and errors come back as malloc'd JSON in *out/*out_len; the caller frees them
//     with gb_free. Errors are {"code": NAME, "message": text}.
//   - No callbacks into the caller: long calls take timeout_ms and an op handle, which can be
//     cancelled (gb_op_cancel) and polled for progress (gb_op_poll).
//   - All state is guarded: exports may be called from many threads at once.
package main

/*
#define GB_TYPES_ONLY
#include "gobridge.h"
#include <stdlib.h>
*/
import "C"

import (
	"time"
	"unsafe"
)

func main() {}

//export gb_version
func gb_version(out **C.uint8_t, outLen *C.size_t) (status C.int32_t) {
	defer recoverExport(&status, out, outLen)
	return C.int32_t(writeResult(versionInfo(), nil, out, outLen))
}

//export gb_call
func gb_call(op C.gb_handle, method *C.uint8_t, methodLen C.size_t, req *C.uint8_t, reqLen C.size_t,
	timeoutMs C.int64_t, out **C.uint8_t, outLen *C.size_t) (status C.int32_t) {
	defer recoverExport(&status, out, outLen)
	m := C.GoStringN((*C.char)(unsafe.Pointer(method)), C.int(methodLen))
	body := C.GoBytes(unsafe.Pointer(req), C.int(reqLen))
	res, err := dispatch(uint64(op), m, body, time.Duration(int64(timeoutMs))*time.Millisecond)
	return C.int32_t(writeResult(res, err, out, outLen))
}

//export gb_op_new
func gb_op_new() (h C.gb_handle) {
	defer func() {
		if recover() != nil {
			h = 0
		}
	}()
	return C.gb_handle(newOp())
}

//export gb_op_cancel
func gb_op_cancel(op C.gb_handle) (status C.int32_t) {
	defer recoverExport(&status, nil, nil)
	return C.int32_t(statusOf(cancelOp(uint64(op))))
}

//export gb_op_poll
func gb_op_poll(op C.gb_handle, timeoutMs C.int64_t, out **C.uint8_t, outLen *C.size_t) (status C.int32_t) {
	defer recoverExport(&status, out, outLen)
	res, err := pollOp(uint64(op), time.Duration(int64(timeoutMs))*time.Millisecond)
	return C.int32_t(writeResult(res, err, out, outLen))
}

//export gb_release
func gb_release(h C.gb_handle) (status C.int32_t) {
	defer recoverExport(&status, nil, nil)
	return C.int32_t(statusOf(releaseHandle(uint64(h))))
}

//export gb_free
func gb_free(p unsafe.Pointer) {
	defer func() { _ = recover() }()
	C.free(p)
}
