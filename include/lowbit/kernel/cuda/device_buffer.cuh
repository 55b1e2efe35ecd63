#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// device_buffer<T>: an owning, move-only cudaMalloc allocation (plain device memory, never
// managed memory, so the card's memory use stays explicit).
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "lowbit/kernel/cuda/check.cuh"

namespace lowbit::inline LOWBIT_ABI::kernel::cuda {

template <class T>
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t n) : n_(n) {
    if (n > 0) LOWBIT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  // Allocates and copies a host array (synchronous: the host data may be freed afterwards).
  explicit device_buffer(std::span<const T> host) : device_buffer(host.size()) {
    if (!host.empty())
      LOWBIT_CUDA_CHECK(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  explicit device_buffer(const std::vector<T>& host) : device_buffer(std::span<const T>(host)) {}
  ~device_buffer() { release(); }
  device_buffer(device_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(T); }
  bool empty() const { return n_ == 0; }

  std::vector<T> to_host() const {
    std::vector<T> h(n_);
    if (n_ > 0) LOWBIT_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  void release() noexcept {
    if (p_) (void)cudaFree(p_);  // a destructor cannot throw; a failing free leaves nothing to do
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace lowbit::kernel::cuda
