#include "half_kernels.h"

#include <c10/util/Half.h>
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

namespace endoked::dist {
namespace {

float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if (f != f) return 0x7FC0;  // NaN, as c10::BFloat16
  return static_cast<std::uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

// CPUID leaf 1, ECX: bit 29 F16C, bit 28 AVX, bit 27 OSXSAVE (the OS saves the AVX state).
bool has_f16c() {
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const unsigned need = (1u << 29) | (1u << 28) | (1u << 27);
    return (c & need) == need;
  }();
  return yes;
}

__attribute__((target("avx,f16c"))) void to_fp16_f16c(const float* src, std::uint16_t* dst,
                                                      std::int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h =
        _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(src + i), s), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = c10::Half(src[i] * scale).x;
}
__attribute__((target("avx,f16c"))) void from_fp16_f16c(const std::uint16_t* src, float* dst,
                                                        std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = static_cast<float>(c10::Half(src[i], c10::Half::from_bits()));
}
__attribute__((target("avx,f16c"))) void sum_fp16_f16c(const std::uint16_t* in,
                                                       std::uint16_t* inout, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(inout + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(inout + i),
                     _mm256_cvtps_ph(_mm256_add_ps(a, b), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i)
    inout[i] = c10::Half(static_cast<float>(c10::Half(in[i], c10::Half::from_bits())) +
                         static_cast<float>(c10::Half(inout[i], c10::Half::from_bits())))
                   .x;
}

float half_bits_to_float(std::uint16_t h) {
  return static_cast<float>(c10::Half(h, c10::Half::from_bits()));
}

}  // namespace

void to_16bit(const float* src, std::uint16_t* dst, std::int64_t n, float scale,
              c10::ScalarType type) {
  if (type == c10::kBFloat16) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i] * scale);
  } else if (has_f16c()) {
    to_fp16_f16c(src, dst, n, scale);
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = c10::Half(src[i] * scale).x;
  }
}

void from_16bit(const std::uint16_t* src, float* dst, std::int64_t n, c10::ScalarType type) {
  if (type == c10::kBFloat16) {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
  } else if (has_f16c()) {
    from_fp16_f16c(src, dst, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
  }
}

void sum_16bit(const std::uint16_t* in, std::uint16_t* inout, std::int64_t n,
               c10::ScalarType type) {
  if (type == c10::kBFloat16) {
    for (std::int64_t i = 0; i < n; ++i)
      inout[i] = float_to_bf16(bf16_to_float(in[i]) + bf16_to_float(inout[i]));
  } else if (has_f16c()) {
    sum_fp16_f16c(in, inout, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      inout[i] = c10::Half(half_bits_to_float(in[i]) + half_bits_to_float(inout[i])).x;
  }
}

}  // namespace endoked::dist
