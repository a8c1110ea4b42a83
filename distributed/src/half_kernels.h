#pragma once
// Internal: 16-bit float conversions and sums at memory speed, for gradient compression and the
// MPI reduction of 16-bit tensors. fp16 uses the F16C instructions when the CPU has them; bf16
// is integer arithmetic the compiler vectorises. Both round to nearest even, as c10::Half and
// c10::BFloat16 do, so results equal LibTorch's own casts.
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace endoked::dist {

/// dst[i] = 16-bit(src[i] * scale); `type` is at::kHalf or at::kBFloat16.
void to_16bit(const float* src, std::uint16_t* dst, std::int64_t n, float scale,
              c10::ScalarType type);
/// dst[i] = float(src[i]).
void from_16bit(const std::uint16_t* src, float* dst, std::int64_t n, c10::ScalarType type);
/// inout[i] = 16-bit(float(in[i]) + float(inout[i])).
void sum_16bit(const std::uint16_t* in, std::uint16_t* inout, std::int64_t n, c10::ScalarType type);

}  // namespace endoked::dist
