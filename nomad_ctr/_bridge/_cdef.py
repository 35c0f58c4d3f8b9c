"""cdef text for cffi ABI mode: the declarations of gobridge/gobridge.h, line for line.

tests/bridge/test_cdef.py checks that every line here appears in gobridge.h and that the
exports match the header cgo generates. ABI mode checks nothing at run time, so a wrong
line here is undefined behaviour: change both files together.
"""

CDEF = """
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

int32_t gb_version(uint8_t **out, size_t *out_len);
int32_t gb_call(gb_handle op, const uint8_t *method, size_t method_len, const uint8_t *req, size_t req_len, int64_t timeout_ms, uint8_t **out, size_t *out_len);
gb_handle gb_op_new(void);
int32_t gb_op_cancel(gb_handle op);
int32_t gb_op_poll(gb_handle op, int64_t timeout_ms, uint8_t **out, size_t *out_len);
int32_t gb_release(gb_handle h);
void gb_free(void *p);
"""

ABI_VERSION = 1
