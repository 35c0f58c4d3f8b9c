/*
 * gobridge.h: the C ABI of libgobridge.so (see CONTRACT.md).
 *
 * Ownership rules
 *   - Every output buffer (*out) is allocated by the library and must be released with
 *     gb_free(). Read it with *out_len; it is not NUL-terminated.
 *   - On GB_OK *out holds a JSON document; on any other status it holds
 *     {"code": "<NAME>", "message": "<text>"}.
 *   - gb_handle values are opaque ids (runtime/cgo.Handle). Release each with gb_release().
 *   - Every function recovers Go panics and reports GB_E_PANIC; none exits the process.
 *   - Go never calls back into the caller: progress is pulled with gb_op_poll().
 *   - One Go runtime per process: do not load a second Go c-shared library; do not use the
 *     library in a child after fork().
 */
#ifndef GOBRIDGE_H
#define GOBRIDGE_H

#include <stddef.h>
#include <stdint.h>

#define GB_ABI_VERSION 1

typedef uint64_t gb_handle;

#define GB_OK 0
#define GB_E_UNKNOWN 1
#define GB_E_INVALID_ARGUMENT 2
#define GB_E_NOT_FOUND 3
#define GB_E_ALREADY_EXISTS 4
#define GB_E_FAILED_PRECONDITION 5
#define GB_E_UNAVAILABLE 6
#define GB_E_PERMISSION_DENIED 7
#define GB_E_UNAUTHENTICATED 8
#define GB_E_TIMEOUT 9
#define GB_E_CANCELLED 10
#define GB_E_NOT_IMPLEMENTED 11
#define GB_E_RESOURCE_EXHAUSTED 12
#define GB_E_INTERNAL 13
#define GB_E_PANIC 14
#define GB_E_CONFLICT 15

#ifndef GB_TYPES_ONLY
int32_t gb_version(uint8_t **out, size_t *out_len);
int32_t gb_call(gb_handle op, const uint8_t *method, size_t method_len, const uint8_t *req, size_t req_len, int64_t timeout_ms, uint8_t **out, size_t *out_len);
gb_handle gb_op_new(void);
int32_t gb_op_cancel(gb_handle op);
int32_t gb_op_poll(gb_handle op, int64_t timeout_ms, uint8_t **out, size_t *out_len);
int32_t gb_release(gb_handle h);
void gb_free(void *p);
#endif

#endif /* GOBRIDGE_H */
