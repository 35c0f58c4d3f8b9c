/* Load libgobridge.so with dlopen (as cffi's ABI mode does), call gb_version and
 * print its JSON answer. Cross-compiled for aarch64 by tests/arm64 and run under
 * qemu-aarch64, it proves the arm64 artifact loads and its Go runtime answers.
 * Exit: 0 ok, 2 usage, 3 dlopen, 4 dlsym, 5 gb_version returned an error status. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int32_t (*version_fn)(uint8_t **out, size_t *out_len);
typedef void (*free_fn)(void *p);

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s /path/to/libgobridge.so\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 3;
    }
    version_fn gb_version = (version_fn)dlsym(lib, "gb_version");
    free_fn gb_free = (free_fn)dlsym(lib, "gb_free");
    if (gb_version == NULL || gb_free == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 4;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    int32_t status = gb_version(&out, &out_len);
    if (out != NULL) {
        fwrite(out, 1, out_len, stdout);
        fputc('\n', stdout);
        gb_free(out);
    }
    fflush(stdout);
    return status == 0 ? 0 : 5;
}
