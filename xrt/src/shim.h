/* The C interface of the C++ shim (shim.cpp) between Rust and XRT's C++ API.
 *
 * Why a shim: XRT reports errors by throwing C++ exceptions, and its own C API either lets some
 * of them escape (Rust aborts on a foreign exception) or swallows the message. Every function
 * here catches everything, returns TRIT_XRT_OK or TRIT_XRT_ERROR, and on error writes XRT's
 * message (NUL-terminated, truncated to errlen bytes) into err.
 *
 * Handles are heap objects owned by the caller and released with the matching *_free function.
 * Every XRT object keeps what it needs alive itself (a buffer keeps its device), so handles
 * may be freed in any order. */
#ifndef TRIT_XRT_SHIM_H
#define TRIT_XRT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Success. */
#define TRIT_XRT_OK 0
/** XRT raised an error; the message is in err. */
#define TRIT_XRT_ERROR 1

typedef struct trit_xrt_device trit_xrt_device;
typedef struct trit_xrt_xclbin trit_xrt_xclbin;
typedef struct trit_xrt_kernel trit_xrt_kernel;
typedef struct trit_xrt_bo trit_xrt_bo;
typedef struct trit_xrt_run trit_xrt_run;

/* Devices. */
int trit_xrt_device_count(uint32_t* count, char* err, size_t errlen);
int trit_xrt_device_open(uint32_t index, trit_xrt_device** out, char* err, size_t errlen);
void trit_xrt_device_free(trit_xrt_device* dev);
/* Loads a parsed xclbin; writes its 16-byte UUID to uuid. */
int trit_xrt_device_load_xclbin(trit_xrt_device* dev, const trit_xrt_xclbin* xclbin, uint8_t* uuid, char* err,
                                size_t errlen);

/* xclbins, parsed by XRT from memory (the caller has checked the container first). */
int trit_xrt_xclbin_from_bytes(const uint8_t* data, size_t len, trit_xrt_xclbin** out, char* err, size_t errlen);
void trit_xrt_xclbin_free(trit_xrt_xclbin* xclbin);
int trit_xrt_xclbin_uuid(const trit_xrt_xclbin* xclbin, uint8_t* uuid, char* err, size_t errlen);
int trit_xrt_xclbin_kernel_count(const trit_xrt_xclbin* xclbin, size_t* count, char* err, size_t errlen);
/* Copies the name of kernel i (NUL-terminated, truncated to namelen bytes) into name. */
int trit_xrt_xclbin_kernel_name(const trit_xrt_xclbin* xclbin, size_t i, char* name, size_t namelen, char* err,
                                size_t errlen);

/* Kernels (compute units) of a loaded xclbin. exclusive != 0 opens the CUs for exclusive access,
 * which XRT requires for register access. */
int trit_xrt_kernel_open(trit_xrt_device* dev, const uint8_t* uuid, const char* name, int exclusive,
                         trit_xrt_kernel** out, char* err, size_t errlen);
void trit_xrt_kernel_free(trit_xrt_kernel* kernel);
int trit_xrt_kernel_group_id(const trit_xrt_kernel* kernel, int arg, int32_t* group, char* err, size_t errlen);
int trit_xrt_kernel_arg_offset(const trit_xrt_kernel* kernel, int arg, uint32_t* offset, char* err, size_t errlen);
int trit_xrt_kernel_read_register(const trit_xrt_kernel* kernel, uint32_t offset, uint32_t* value, char* err,
                                  size_t errlen);
int trit_xrt_kernel_write_register(trit_xrt_kernel* kernel, uint32_t offset, uint32_t value, char* err,
                                   size_t errlen);

/* Buffer objects. */
int trit_xrt_bo_alloc(trit_xrt_device* dev, size_t size, int32_t group, trit_xrt_bo** out, char* err, size_t errlen);
void trit_xrt_bo_free(trit_xrt_bo* bo);
int trit_xrt_bo_write(trit_xrt_bo* bo, const void* src, size_t size, size_t offset, char* err, size_t errlen);
int trit_xrt_bo_read(trit_xrt_bo* bo, void* dst, size_t size, size_t offset, char* err, size_t errlen);
/* to_device != 0: host buffer to device memory; 0: device memory to host buffer. */
int trit_xrt_bo_sync(trit_xrt_bo* bo, int to_device, size_t size, size_t offset, char* err, size_t errlen);
int trit_xrt_bo_address(const trit_xrt_bo* bo, uint64_t* address, char* err, size_t errlen);

/* Runs (XRT-scheduled kernel executions). */
int trit_xrt_run_open(const trit_xrt_kernel* kernel, trit_xrt_run** out, char* err, size_t errlen);
void trit_xrt_run_free(trit_xrt_run* run);
int trit_xrt_run_set_arg_bo(trit_xrt_run* run, int arg, const trit_xrt_bo* bo, char* err, size_t errlen);
int trit_xrt_run_start(trit_xrt_run* run, char* err, size_t errlen);
/* Waits at most timeout_ms (> 0) and writes the run's ert_cmd_state to state. */
int trit_xrt_run_wait(trit_xrt_run* run, uint32_t timeout_ms, uint32_t* state, char* err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
