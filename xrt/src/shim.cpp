// The C++ side of the XRT binding: each function below calls XRT's C++ API inside try/catch and
// turns any exception into TRIT_XRT_ERROR plus the exception's message (see shim.h for why).
// Nothing here may let an exception cross into Rust.

#include "shim.h"

#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>
#include <experimental/xrt_system.h>
#include <experimental/xrt_xclbin.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct trit_xrt_device {
  xrt::device dev;
};
struct trit_xrt_xclbin {
  xrt::xclbin xclbin;
};
struct trit_xrt_kernel {
  xrt::kernel kernel;
};
struct trit_xrt_bo {
  xrt::bo bo;
};
struct trit_xrt_run {
  xrt::run run;
};

namespace {

void copy_str(char* dst, size_t len, const char* src) {
  if (dst == nullptr || len == 0)
    return;
  std::strncpy(dst, src, len - 1);
  dst[len - 1] = '\0';
}

// Runs f, converting every exception into an error code and message.
template <typename F>
int guard(char* err, size_t errlen, F&& f) {
  try {
    f();
    return TRIT_XRT_OK;
  } catch (const std::exception& e) {
    // Some XRT errors have an empty what(); never hand back an empty message.
    copy_str(err, errlen, e.what()[0] != '\0' ? e.what() : "XRT raised an exception without a message");
    return TRIT_XRT_ERROR;
  } catch (...) {
    copy_str(err, errlen, "XRT raised a non-standard C++ exception");
    return TRIT_XRT_ERROR;
  }
}

// Destructors of XRT objects release driver resources and may throw in principle; a failure to
// release is not actionable by the caller, so it is swallowed.
template <typename T>
void destroy(T* p) {
  try {
    delete p;
  } catch (...) {
  }
}

xrt::uuid to_uuid(const uint8_t* bytes) {
  xuid_t raw;
  std::memcpy(raw, bytes, sizeof(raw));
  return xrt::uuid(raw);
}

void from_uuid(const xrt::uuid& uuid, uint8_t* out) {
  std::memcpy(out, uuid.get(), 16);
}

}  // namespace

extern "C" {

int trit_xrt_device_count(uint32_t* count, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *count = static_cast<uint32_t>(xrt::system::enumerate_devices()); });
}

int trit_xrt_device_open(uint32_t index, trit_xrt_device** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *out = new trit_xrt_device{xrt::device(index)}; });
}

void trit_xrt_device_free(trit_xrt_device* dev) {
  destroy(dev);
}

int trit_xrt_device_load_xclbin(trit_xrt_device* dev, const trit_xrt_xclbin* xclbin, uint8_t* uuid, char* err,
                                size_t errlen) {
  return guard(err, errlen, [&] { from_uuid(dev->dev.load_xclbin(xclbin->xclbin), uuid); });
}

int trit_xrt_xclbin_from_bytes(const uint8_t* data, size_t len, trit_xrt_xclbin** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    std::vector<char> bytes(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + len);
    *out = new trit_xrt_xclbin{xrt::xclbin(bytes)};
  });
}

void trit_xrt_xclbin_free(trit_xrt_xclbin* xclbin) {
  destroy(xclbin);
}

int trit_xrt_xclbin_uuid(const trit_xrt_xclbin* xclbin, uint8_t* uuid, char* err, size_t errlen) {
  return guard(err, errlen, [&] { from_uuid(xclbin->xclbin.get_uuid(), uuid); });
}

int trit_xrt_xclbin_kernel_count(const trit_xrt_xclbin* xclbin, size_t* count, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *count = xclbin->xclbin.get_kernels().size(); });
}

int trit_xrt_xclbin_kernel_name(const trit_xrt_xclbin* xclbin, size_t i, char* name, size_t namelen, char* err,
                                size_t errlen) {
  return guard(err, errlen, [&] {
    auto kernels = xclbin->xclbin.get_kernels();
    copy_str(name, namelen, kernels.at(i).get_name().c_str());
  });
}

int trit_xrt_kernel_open(trit_xrt_device* dev, const uint8_t* uuid, const char* name, int exclusive,
                         trit_xrt_kernel** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto mode = exclusive ? xrt::kernel::cu_access_mode::exclusive : xrt::kernel::cu_access_mode::shared;
    *out = new trit_xrt_kernel{xrt::kernel(dev->dev, to_uuid(uuid), name, mode)};
  });
}

void trit_xrt_kernel_free(trit_xrt_kernel* kernel) {
  destroy(kernel);
}

int trit_xrt_kernel_group_id(const trit_xrt_kernel* kernel, int arg, int32_t* group, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *group = kernel->kernel.group_id(arg); });
}

int trit_xrt_kernel_arg_offset(const trit_xrt_kernel* kernel, int arg, uint32_t* offset, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *offset = kernel->kernel.offset(arg); });
}

int trit_xrt_kernel_read_register(const trit_xrt_kernel* kernel, uint32_t offset, uint32_t* value, char* err,
                                  size_t errlen) {
  return guard(err, errlen, [&] { *value = kernel->kernel.read_register(offset); });
}

int trit_xrt_kernel_write_register(trit_xrt_kernel* kernel, uint32_t offset, uint32_t value, char* err,
                                   size_t errlen) {
  return guard(err, errlen, [&] { kernel->kernel.write_register(offset, value); });
}

int trit_xrt_bo_alloc(trit_xrt_device* dev, size_t size, int32_t group, trit_xrt_bo** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    *out = new trit_xrt_bo{xrt::bo(dev->dev, size, xrt::bo::flags::normal, static_cast<xrt::memory_group>(group))};
  });
}

void trit_xrt_bo_free(trit_xrt_bo* bo) {
  destroy(bo);
}

int trit_xrt_bo_write(trit_xrt_bo* bo, const void* src, size_t size, size_t offset, char* err, size_t errlen) {
  return guard(err, errlen, [&] { bo->bo.write(src, size, offset); });
}

int trit_xrt_bo_read(trit_xrt_bo* bo, void* dst, size_t size, size_t offset, char* err, size_t errlen) {
  return guard(err, errlen, [&] { bo->bo.read(dst, size, offset); });
}

int trit_xrt_bo_sync(trit_xrt_bo* bo, int to_device, size_t size, size_t offset, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    bo->bo.sync(to_device ? XCL_BO_SYNC_BO_TO_DEVICE : XCL_BO_SYNC_BO_FROM_DEVICE, size, offset);
  });
}

int trit_xrt_bo_address(const trit_xrt_bo* bo, uint64_t* address, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *address = bo->bo.address(); });
}

int trit_xrt_run_open(const trit_xrt_kernel* kernel, trit_xrt_run** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] { *out = new trit_xrt_run{xrt::run(kernel->kernel)}; });
}

void trit_xrt_run_free(trit_xrt_run* run) {
  destroy(run);
}

int trit_xrt_run_set_arg_bo(trit_xrt_run* run, int arg, const trit_xrt_bo* bo, char* err, size_t errlen) {
  return guard(err, errlen, [&] { run->run.set_arg(arg, bo->bo); });
}

int trit_xrt_run_start(trit_xrt_run* run, char* err, size_t errlen) {
  return guard(err, errlen, [&] { run->run.start(); });
}

int trit_xrt_run_wait(trit_xrt_run* run, uint32_t timeout_ms, uint32_t* state, char* err, size_t errlen) {
  return guard(err, errlen,
               [&] { *state = static_cast<uint32_t>(run->run.wait(std::chrono::milliseconds(timeout_ms))); });
}

}  // extern "C"
