#include "quant/kv_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/fp16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define KVC_KVQ_AVX512 1
#else
#define KVC_KVQ_AVX512 0
#endif

namespace kvc {
namespace {

constexpr int32_t kMaxGroup = 256;
constexpr uint16_t kF16MaxFinite = 0x7bff;  // 65504

constexpr int32_t QMax(KVType t) { return t == KVType::kQ4 ? 15 : 3; }

size_t CodeBytes(KVType t, int32_t g) { return static_cast<size_t>(g) * KVTypeBits(t) / 8; }

bool ArgsValid(KVType t, int32_t n, int32_t g) {
  if (n < 0) return false;
  if (!IsQuantized(t)) return true;
  return KVGroupValid(t, g) && n % g == 0;
}

// ---- Group parameters (shared by the reference and the SIMD encoders, so both agree bit for bit).

struct GroupParams {
  uint16_t scale_bits = 0;
  uint8_t zero = 0;
  float scale = 0.0f;  // F16ToF32(scale_bits)
};

GroupParams MakeParams(uint16_t bits, uint8_t zero) {
  GroupParams p;
  p.scale_bits = bits;
  p.zero = zero;
  p.scale = F16ToF32(bits);
  if (p.scale == 0.0f) p.scale_bits = 0, p.scale = 0.0f;  // no -0 scales
  return p;
}

// Smallest f16 >= v (v >= 0), saturating at 65504. Rounding up keeps max - min within
// qmax * S, so no value needs clamping beyond the half step of Z's rounding.
uint16_t F16CeilMagnitude(float v) {
  uint16_t h = F32ToF16(v);
  if (h >= 0x7c00) return kF16MaxFinite;
  if (F16ToF32(h) < v) ++h;
  return std::min(h, kF16MaxFinite);
}

GroupParams Q8Params(float absmax) {
  uint16_t h = F32ToF16(absmax / 127.0f);
  if (h >= 0x7c00) h = kF16MaxFinite;  // saturate instead of an infinite scale
  return MakeParams(h, 0);
}

// lo/hi: min and max of the group's non-NaN values (lo > hi when there are none).
GroupParams AffineParams(float lo, float hi, int32_t qmax) {
  if (!(hi >= lo)) return GroupParams{};  // all NaN
  if (hi == lo) {
    // Constant group: S = f16(c), Z = 0, all codes 1 -> decodes to f16(c) (exact for f16 values).
    const uint16_t h = F32ToF16(lo);
    if ((h & 0x7fff) < 0x7c00) return MakeParams(h, 0);
    // Beyond the f16 range: the general rule (S0 = 0) stores c as 255 steps of |c| / 255.
  }
  // All-positive groups flip the scale's sign so that the zero-point stays non-negative.
  const bool mirror = lo > 0.0f;
  const float far = mirror ? hi : -lo;  // distance of the extreme that encodes as code 0
  float mag = far / 255.0f;             // keeps Z = round(far / |S|) <= 255
  const float s0 = (hi - lo) / static_cast<float>(qmax);
  if (s0 > mag) mag = s0;
  const uint16_t h = F16CeilMagnitude(mag);
  const float s = F16ToF32(h);
  float z = far / s;
  if (!(mag <= s)) {
    // Saturated scale: no window covers the group; centre the qmax steps on it instead of
    // pinning one extreme (which could leave the whole window on one side of the data).
    const float mid = mirror ? lo * 0.5f + hi * 0.5f : -(lo * 0.5f + hi * 0.5f);
    z = static_cast<float>(qmax) * 0.5f + mid / s;
    if (std::isnan(z)) z = 0.0f;
  }
  z = std::clamp(std::nearbyint(z), 0.0f, 255.0f);
  return MakeParams(mirror ? static_cast<uint16_t>(h | 0x8000u) : h, static_cast<uint8_t>(z));
}

void StoreParams(KVType t, const GroupParams& p, uint8_t* params) {
  std::memcpy(params, &p.scale_bits, 2);
  if (t != KVType::kQ8) params[2] = p.zero;
}

struct Decoded {
  float scale;
  int32_t zero;
};

Decoded LoadParams(KVType t, const uint8_t* group, int32_t g) {
  const uint8_t* p = group + CodeBytes(t, g);
  uint16_t h;
  std::memcpy(&h, p, 2);
  return {F16ToF32(h), t == KVType::kQ8 ? 0 : static_cast<int32_t>(p[2])};
}

// ---- Scalar codes.

int32_t Q8Code(float x, float s) {
  if (s == 0.0f) return 0;
  const float v = std::nearbyint(x / s);
  if (std::isnan(v)) return 0;
  return static_cast<int32_t>(std::clamp(v, -127.0f, 127.0f));
}

// NaN (and everything when S = 0) takes the code nearest to 0: Z, clamped into the code range.
int32_t AffineCode(float x, float s, int32_t z, int32_t qmax) {
  if (s == 0.0f || std::isnan(x)) return std::min(z, qmax);
  const float v = std::nearbyint(x / s) + static_cast<float>(z);
  if (std::isnan(v)) return std::min(z, qmax);
  return static_cast<int32_t>(std::clamp(v, 0.0f, static_cast<float>(qmax)));
}

template <KVType T>
inline int32_t CodeAt(const uint8_t* codes, int32_t i) {
  if constexpr (T == KVType::kQ8) {
    return static_cast<int8_t>(codes[i]);
  } else if constexpr (T == KVType::kQ4) {
    return (codes[i >> 1] >> ((i & 1) * 4)) & 15;
  } else {
    return (codes[i >> 2] >> ((i & 3) * 2)) & 3;
  }
}

int32_t CodeAt(KVType t, const uint8_t* codes, int32_t i) {
  switch (t) {
    case KVType::kQ8: return CodeAt<KVType::kQ8>(codes, i);
    case KVType::kQ4: return CodeAt<KVType::kQ4>(codes, i);
    default: return CodeAt<KVType::kQ2>(codes, i);
  }
}

void PackCodes(KVType t, const int32_t* c, int32_t g, uint8_t* out) {
  switch (t) {
    case KVType::kQ8:
      for (int32_t i = 0; i < g; ++i) out[i] = static_cast<uint8_t>(static_cast<int8_t>(c[i]));
      break;
    case KVType::kQ4:
      for (int32_t i = 0; i < g / 2; ++i) out[i] = static_cast<uint8_t>(c[2 * i] | (c[2 * i + 1] << 4));
      break;
    default:
      for (int32_t i = 0; i < g / 4; ++i) {
        out[i] = static_cast<uint8_t>(c[4 * i] | (c[4 * i + 1] << 2) | (c[4 * i + 2] << 4) |
                                      (c[4 * i + 3] << 6));
      }
      break;
  }
}

// ---- Scalar reference of one group.

void EncodeGroupRef(KVType t, const float* x, int32_t g, uint8_t* out) {
  int32_t codes[kMaxGroup];
  GroupParams p;
  if (t == KVType::kQ8) {
    float amax = 0.0f;
    for (int32_t i = 0; i < g; ++i) {
      const float a = std::fabs(x[i]);
      if (a > amax) amax = a;  // NaN never compares greater
    }
    p = Q8Params(amax);
    for (int32_t i = 0; i < g; ++i) codes[i] = Q8Code(x[i], p.scale);
  } else {
    float lo = std::numeric_limits<float>::infinity();
    float hi = -lo;
    for (int32_t i = 0; i < g; ++i) {
      if (x[i] < lo) lo = x[i];
      if (x[i] > hi) hi = x[i];
    }
    const int32_t qmax = QMax(t);
    p = AffineParams(lo, hi, qmax);
    for (int32_t i = 0; i < g; ++i) codes[i] = AffineCode(x[i], p.scale, p.zero, qmax);
  }
  PackCodes(t, codes, g, out);
  StoreParams(t, p, out + CodeBytes(t, g));
}

void DecodeGroupRef(KVType t, const uint8_t* in, int32_t g, float* out) {
  const Decoded p = LoadParams(t, in, g);
  for (int32_t i = 0; i < g; ++i) out[i] = p.scale * static_cast<float>(CodeAt(t, in, i) - p.zero);
}

// ---- Plain float element access.

float LoadPlain(KVType t, const uint8_t* in, int64_t i) {
  switch (t) {
    case KVType::kF32: {
      float v;
      std::memcpy(&v, in + 4 * i, 4);
      return v;
    }
    case KVType::kF16: {
      uint16_t h;
      std::memcpy(&h, in + 2 * i, 2);
      return F16ToF32(h);
    }
    default: {
      uint16_t h;
      std::memcpy(&h, in + 2 * i, 2);
      return Bf16ToF32(h);
    }
  }
}

void StorePlain(KVType t, float v, uint8_t* out, int64_t i) {
  switch (t) {
    case KVType::kF32: std::memcpy(out + 4 * i, &v, 4); break;
    case KVType::kF16: {
      const uint16_t h = F32ToF16(v);
      std::memcpy(out + 2 * i, &h, 2);
      break;
    }
    default: {
      const uint16_t h = F32ToBf16(v);
      std::memcpy(out + 2 * i, &h, 2);
      break;
    }
  }
}

#if KVC_KVQ_AVX512

// ---- AVX-512 kernels for groups of a multiple of 16 elements, and plain rows.

// LoadParams with the hardware f16 conversion (same value as F16ToF32, without its branches).
inline Decoded LoadParamsFast(KVType t, const uint8_t* group, int32_t g) {
  const uint8_t* p = group + CodeBytes(t, g);
  uint16_t h;
  std::memcpy(&h, p, 2);
  return {_cvtsh_ss(h), t == KVType::kQ8 ? 0 : static_cast<int32_t>(p[2])};
}

// 16 codes starting at element 16k of a group's code bytes, as int32 lanes.
template <KVType T>
inline __m512i LoadCodes16(const uint8_t* codes, int32_t k) {
  if constexpr (T == KVType::kQ8) {
    return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16 * k)));
  } else if constexpr (T == KVType::kQ4) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * k));
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));  // lo0 hi0 lo1 hi1 ... = elements in order
  } else {
    uint32_t w;
    std::memcpy(&w, codes + 4 * k, 4);  // element e sits in bits 2e..2e+1 of this word
    const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(w)), shifts),
                            _mm512_set1_epi32(3));
  }
}

// (code - Z) of 16 elements as floats; exact, so decode = S * this matches the reference.
template <KVType T>
inline __m512 Centered16(const uint8_t* codes, int32_t k, __m512i zv) {
  const __m512i c = LoadCodes16<T>(codes, k);
  if constexpr (T == KVType::kQ8) return _mm512_cvtepi32_ps(c);
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(c, zv));
}

template <KVType T>
float DotSimd(const uint8_t* row, const float* q, int32_t n, int32_t g) {
  const size_t gb = KVGroupBytes(T, g);
  const int32_t chunks = g / 16;
  __m512 acc = _mm512_setzero_ps();
  for (int32_t base = 0; base < n; base += g, row += gb) {
    const Decoded p = LoadParamsFast(T, row, g);
    const __m512i zv = _mm512_set1_epi32(p.zero);
    __m512 gs = _mm512_setzero_ps();
    for (int32_t k = 0; k < chunks; ++k) {
      gs = _mm512_fmadd_ps(_mm512_loadu_ps(q + base + 16 * k), Centered16<T>(row, k, zv), gs);
    }
    acc = _mm512_fmadd_ps(gs, _mm512_set1_ps(p.scale), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

template <KVType T>
void AxpySimd(const uint8_t* row, float a, float* acc, int32_t n, int32_t g) {
  const size_t gb = KVGroupBytes(T, g);
  const int32_t chunks = g / 16;
  for (int32_t base = 0; base < n; base += g, row += gb) {
    const Decoded p = LoadParamsFast(T, row, g);
    const __m512i zv = _mm512_set1_epi32(p.zero);
    const __m512 as = _mm512_set1_ps(a * p.scale);
    for (int32_t k = 0; k < chunks; ++k) {
      float* dst = acc + base + 16 * k;
      _mm512_storeu_ps(dst, _mm512_fmadd_ps(Centered16<T>(row, k, zv), as, _mm512_loadu_ps(dst)));
    }
  }
}

template <KVType T>
void DequantizeSimd(const uint8_t* in, int32_t n, int32_t g, float* out) {
  const size_t gb = KVGroupBytes(T, g);
  const int32_t chunks = g / 16;
  for (int32_t base = 0; base < n; base += g, in += gb) {
    const Decoded p = LoadParamsFast(T, in, g);
    const __m512i zv = _mm512_set1_epi32(p.zero);
    const __m512 sv = _mm512_set1_ps(p.scale);
    for (int32_t k = 0; k < chunks; ++k) {
      _mm512_storeu_ps(out + base + 16 * k, _mm512_mul_ps(Centered16<T>(in, k, zv), sv));
    }
  }
}

// Many rows at once (attention tiles): the common group sizes get their 16-element chunk loop
// unrolled, which matters for rows of only a few groups.
template <KVType T, int kChunks>
void DequantizeRowsFixed(const uint8_t* const* rows, int32_t n_rows, int32_t n, float* out) {
  constexpr int32_t g = 16 * kChunks;
  const size_t gb = KVGroupBytes(T, g);
  for (int32_t r = 0; r < n_rows; ++r) {
    const uint8_t* in = rows[r];
    for (int32_t base = 0; base < n; base += g, in += gb, out += g) {
      const Decoded p = LoadParamsFast(T, in, g);
      const __m512i zv = _mm512_set1_epi32(p.zero);
      const __m512 sv = _mm512_set1_ps(p.scale);
      for (int32_t k = 0; k < kChunks; ++k) _mm512_storeu_ps(out + 16 * k, _mm512_mul_ps(Centered16<T>(in, k, zv), sv));
    }
  }
}

template <KVType T>
void DequantizeRowsSimd(const uint8_t* const* rows, int32_t n_rows, int32_t n, int32_t g, float* out) {
  switch (g) {
    case 16: return DequantizeRowsFixed<T, 1>(rows, n_rows, n, out);
    case 32: return DequantizeRowsFixed<T, 2>(rows, n_rows, n, out);
    case 64: return DequantizeRowsFixed<T, 4>(rows, n_rows, n, out);
    default:
      for (int32_t r = 0; r < n_rows; ++r) DequantizeSimd<T>(rows[r], n, g, out + int64_t{r} * n);
  }
}

template <KVType T>
inline void StoreCodes16(__m512i c, uint8_t* codes, int32_t k) {
  if constexpr (T == KVType::kQ8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + 16 * k), _mm512_cvtepi32_epi8(c));
  } else if constexpr (T == KVType::kQ4) {
    // Byte pairs (even, odd) as u16 lanes -> even | odd << 4, then narrow to bytes.
    const __m128i w = _mm512_cvtepi32_epi8(c);
    const __m128i packed = _mm_and_si128(_mm_or_si128(w, _mm_srli_epi16(w, 4)), _mm_set1_epi16(0x00ff));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + 8 * k), _mm_packus_epi16(packed, packed));
  } else {
    const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const uint32_t w = static_cast<uint32_t>(_mm512_reduce_or_epi32(_mm512_sllv_epi32(c, shifts)));
    std::memcpy(codes + 4 * k, &w, 4);
  }
}

template <KVType T>
void QuantizeSimd(const float* x, int32_t n, int32_t g, uint8_t* out) {
  const size_t gb = KVGroupBytes(T, g);
  const int32_t chunks = g / 16;
  for (int32_t base = 0; base < n; base += g, out += gb) {
    const float* xg = x + base;
    GroupParams p;
    if constexpr (T == KVType::kQ8) {
      __m512 vmax = _mm512_setzero_ps();
      for (int32_t k = 0; k < chunks; ++k) {
        vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xg + 16 * k)), vmax);  // NaN -> keeps vmax
      }
      p = Q8Params(_mm512_reduce_max_ps(vmax));
    } else {
      __m512 vlo = _mm512_set1_ps(std::numeric_limits<float>::infinity());
      __m512 vhi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      for (int32_t k = 0; k < chunks; ++k) {
        const __m512 v = _mm512_loadu_ps(xg + 16 * k);
        vlo = _mm512_min_ps(v, vlo);  // second operand wins on NaN, as the reference's x < lo
        vhi = _mm512_max_ps(v, vhi);
      }
      p = AffineParams(_mm512_reduce_min_ps(vlo), _mm512_reduce_max_ps(vhi), QMax(T));
    }
    const __m512 sv = _mm512_set1_ps(p.scale);
    const __m512 zf = _mm512_set1_ps(static_cast<float>(p.zero));
    const int32_t nan_code = T == KVType::kQ8 ? 0 : std::min<int32_t>(p.zero, QMax(T));
    const __m512 lo_clamp = _mm512_set1_ps(T == KVType::kQ8 ? -127.0f : 0.0f);
    const __m512 hi_clamp = _mm512_set1_ps(T == KVType::kQ8 ? 127.0f : static_cast<float>(QMax(T)));
    for (int32_t k = 0; k < chunks; ++k) {
      __m512i c;
      if (p.scale == 0.0f) {
        c = _mm512_set1_epi32(nan_code);
      } else {
        __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(xg + 16 * k), sv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if constexpr (T != KVType::kQ8) v = _mm512_add_ps(v, zf);
        const __mmask16 ordered = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        v = _mm512_min_ps(_mm512_max_ps(v, lo_clamp), hi_clamp);
        v = _mm512_mask_blend_ps(ordered, _mm512_set1_ps(static_cast<float>(nan_code)), v);
        c = _mm512_cvtps_epi32(v);
      }
      StoreCodes16<T>(c, out, k);
    }
    StoreParams(T, p, out + CodeBytes(T, g));
  }
}

// Plain rows: 16 elements at a time, the tail through the scalar path.
inline __m512 LoadPlain16(KVType t, const uint8_t* in, int64_t i) {
  switch (t) {
    case KVType::kF32: return _mm512_loadu_ps(in + 4 * i);
    case KVType::kF16:
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i)));
    default:
      return _mm512_castsi512_ps(_mm512_slli_epi32(
          _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i))), 16));
  }
}

float DotPlainSimd(KVType t, const uint8_t* in, const float* q, int32_t n) {
  __m512 acc = _mm512_setzero_ps();
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadPlain16(t, in, i), acc);
  float sum = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) sum += q[i] * LoadPlain(t, in, i);
  return sum;
}

void AxpyPlainSimd(KVType t, const uint8_t* in, float a, float* acc, int32_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(LoadPlain16(t, in, i), av, _mm512_loadu_ps(acc + i)));
  }
  for (; i < n; ++i) acc[i] += a * LoadPlain(t, in, i);
}

void DequantizePlainSimd(KVType t, const uint8_t* in, int32_t n, float* out) {
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, LoadPlain16(t, in, i));
  for (; i < n; ++i) out[i] = LoadPlain(t, in, i);
}

void QuantizePlainSimd(KVType t, const float* x, int32_t n, uint8_t* out) {
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    __m256i h;
    if (t == KVType::kF16) {
      if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0) break;  // NaN payloads: scalar, like F32ToF16
      h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {
      // Integer round-to-nearest-even like F32ToBf16 (the hardware instruction flushes subnormals).
      const __m512i b = _mm512_castps_si512(v);
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
      __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
      const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
                                                    _mm512_set1_epi32(0x7f800000));
      r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40)));
      h = _mm512_cvtepi32_epi16(r);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i), h);
  }
  for (; i < n; ++i) StorePlain(t, x[i], out, i);
}

bool UseSimd(KVType t, int32_t g) { return !IsQuantized(t) || g % 16 == 0; }

#endif  // KVC_KVQ_AVX512

// ---- KIVI channel groups (scalar; one group per channel).

template <KVType T>
void DotChannelGroup(const uint8_t* in, const float* q, int32_t n, int32_t g, float* scores) {
  const size_t gb = KVGroupBytes(T, g);
  for (int32_t c = 0; c < n; ++c, in += gb) {
    const Decoded p = LoadParams(T, in, g);
    const float w = q[c] * p.scale;
    for (int32_t j = 0; j < g; ++j) scores[j] += w * static_cast<float>(CodeAt<T>(in, j) - p.zero);
  }
}

}  // namespace

size_t KVGroupBytes(KVType t, int32_t g) {
  if (g <= 0) return 0;
  const size_t params = t == KVType::kQ8 ? 2 : IsQuantized(t) ? 3 : 0;
  return CodeBytes(t, g) + params;
}

bool KVGroupValid(KVType t, int32_t g) {
  switch (t) {
    case KVType::kQ8: return g >= 1 && g <= kMaxGroup;
    case KVType::kQ4: return g >= 2 && g <= kMaxGroup && g % 2 == 0;
    case KVType::kQ2: return g >= 4 && g <= kMaxGroup && g % 4 == 0;
    default: return true;
  }
}

bool KVQuantHasSimd() { return KVC_KVQ_AVX512 != 0; }

// ---- References.

void QuantizeKVRowRef(KVType t, const float* x, int32_t n, int32_t g, uint8_t* out) {
  if (!ArgsValid(t, n, g)) return;
  if (!IsQuantized(t)) {
    for (int32_t i = 0; i < n; ++i) StorePlain(t, x[i], out, i);
    return;
  }
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t base = 0; base < n; base += g, out += gb) EncodeGroupRef(t, x + base, g, out);
}

void DequantizeKVRowRef(KVType t, const uint8_t* in, int32_t n, int32_t g, float* out) {
  if (!ArgsValid(t, n, g)) {
    if (n > 0) std::fill(out, out + n, 0.0f);
    return;
  }
  if (!IsQuantized(t)) {
    for (int32_t i = 0; i < n; ++i) out[i] = LoadPlain(t, in, i);
    return;
  }
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t base = 0; base < n; base += g, in += gb) DecodeGroupRef(t, in, g, out + base);
}

float DotKVRowRef(KVType t, const uint8_t* row, const float* q, int32_t n, int32_t g) {
  if (!ArgsValid(t, n, g)) return 0.0f;
  float sum = 0.0f;
  if (!IsQuantized(t)) {
    for (int32_t i = 0; i < n; ++i) sum += q[i] * LoadPlain(t, row, i);
    return sum;
  }
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t base = 0; base < n; base += g, row += gb) {
    const Decoded p = LoadParams(t, row, g);
    float gs = 0.0f;
    for (int32_t i = 0; i < g; ++i) gs += q[base + i] * static_cast<float>(CodeAt(t, row, i) - p.zero);
    sum += p.scale * gs;
  }
  return sum;
}

void AxpyKVRowRef(KVType t, const uint8_t* row, float a, float* acc, int32_t n, int32_t g) {
  if (!ArgsValid(t, n, g)) return;
  if (!IsQuantized(t)) {
    for (int32_t i = 0; i < n; ++i) acc[i] += a * LoadPlain(t, row, i);
    return;
  }
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t base = 0; base < n; base += g, row += gb) {
    const Decoded p = LoadParams(t, row, g);
    for (int32_t i = 0; i < g; ++i) {
      acc[base + i] += a * (p.scale * static_cast<float>(CodeAt(t, row, i) - p.zero));
    }
  }
}

// ---- Dispatch.

#if KVC_KVQ_AVX512
#define KVC_KVQ_DISPATCH(fn, t, ...)                                       \
  switch (t) {                                                             \
    case KVType::kQ8: return fn<KVType::kQ8>(__VA_ARGS__);                 \
    case KVType::kQ4: return fn<KVType::kQ4>(__VA_ARGS__);                 \
    default: return fn<KVType::kQ2>(__VA_ARGS__);                          \
  }
#endif

void QuantizeKVRow(KVType t, const float* x, int32_t n, int32_t g, uint8_t* out) {
#if KVC_KVQ_AVX512
  if (ArgsValid(t, n, g) && UseSimd(t, g)) {
    if (t == KVType::kF32) {
      std::memcpy(out, x, static_cast<size_t>(n) * 4);
      return;
    }
    if (!IsQuantized(t)) return QuantizePlainSimd(t, x, n, out);
    KVC_KVQ_DISPATCH(QuantizeSimd, t, x, n, g, out)
  }
#endif
  QuantizeKVRowRef(t, x, n, g, out);
}

void DequantizeKVRow(KVType t, const uint8_t* in, int32_t n, int32_t g, float* out) {
#if KVC_KVQ_AVX512
  if (ArgsValid(t, n, g) && UseSimd(t, g)) {
    if (!IsQuantized(t)) return DequantizePlainSimd(t, in, n, out);
    KVC_KVQ_DISPATCH(DequantizeSimd, t, in, n, g, out)
  }
#endif
  DequantizeKVRowRef(t, in, n, g, out);
}

void DequantizeKVRows(KVType t, const uint8_t* const* rows, int32_t n_rows, int32_t n, int32_t g,
                      float* out) {
#if KVC_KVQ_AVX512
  if (ArgsValid(t, n, g) && UseSimd(t, g)) {
    if (!IsQuantized(t)) {
      for (int32_t r = 0; r < n_rows; ++r) DequantizePlainSimd(t, rows[r], n, out + int64_t{r} * n);
      return;
    }
    KVC_KVQ_DISPATCH(DequantizeRowsSimd, t, rows, n_rows, n, g, out)
  }
#endif
  for (int32_t r = 0; r < n_rows; ++r) DequantizeKVRowRef(t, rows[r], n, g, out + int64_t{r} * n);
}

float DotKVRow(KVType t, const uint8_t* row, const float* q, int32_t n, int32_t g) {
#if KVC_KVQ_AVX512
  if (ArgsValid(t, n, g) && UseSimd(t, g)) {
    if (!IsQuantized(t)) return DotPlainSimd(t, row, q, n);
    KVC_KVQ_DISPATCH(DotSimd, t, row, q, n, g)
  }
#endif
  return DotKVRowRef(t, row, q, n, g);
}

void AxpyKVRow(KVType t, const uint8_t* row, float a, float* acc, int32_t n, int32_t g) {
#if KVC_KVQ_AVX512
  if (ArgsValid(t, n, g) && UseSimd(t, g)) {
    if (!IsQuantized(t)) return AxpyPlainSimd(t, row, a, acc, n);
    KVC_KVQ_DISPATCH(AxpySimd, t, row, a, acc, n, g)
  }
#endif
  AxpyKVRowRef(t, row, a, acc, n, g);
}

// ---- KIVI channel groups.

void QuantizeKVChannelGroup(KVType t, const float* rows, int32_t n, int32_t g, uint8_t* out) {
  if (n < 0 || g <= 0 || !KVGroupValid(t, g)) return;
  const size_t gb = KVGroupBytes(t, g);
  float column[kMaxGroup];
  for (int32_t c = 0; c < n; ++c, out += gb) {
    if (IsQuantized(t)) {
      for (int32_t j = 0; j < g; ++j) column[j] = rows[static_cast<int64_t>(j) * n + c];
      QuantizeKVRow(t, column, g, g, out);
    } else {
      for (int32_t j = 0; j < g; ++j) StorePlain(t, rows[static_cast<int64_t>(j) * n + c], out, j);
    }
  }
}

void DequantizeKVChannelGroupRow(KVType t, const uint8_t* in, int32_t n, int32_t g, int32_t j,
                                 float* out) {
  if (n <= 0) return;
  if (g <= 0 || !KVGroupValid(t, g) || j < 0 || j >= g) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t c = 0; c < n; ++c, in += gb) {
    if (IsQuantized(t)) {
      const Decoded p = LoadParams(t, in, g);
      out[c] = p.scale * static_cast<float>(CodeAt(t, in, j) - p.zero);
    } else {
      out[c] = LoadPlain(t, in, j);
    }
  }
}

void DequantizeKVChannelGroup(KVType t, const uint8_t* in, int32_t n, int32_t g, float* rows) {
  if (n <= 0 || g <= 0) return;
  if (!KVGroupValid(t, g)) {
    std::fill(rows, rows + static_cast<int64_t>(n) * g, 0.0f);
    return;
  }
  const size_t gb = KVGroupBytes(t, g);
  float column[kMaxGroup];
  const bool quantized = IsQuantized(t);
  for (int32_t c = 0; c < n; ++c, in += gb) {
    if (quantized) {
      DequantizeKVRow(t, in, g, g, column);
      for (int32_t j = 0; j < g; ++j) rows[static_cast<int64_t>(j) * n + c] = column[j];
    } else {
      for (int32_t j = 0; j < g; ++j) rows[static_cast<int64_t>(j) * n + c] = LoadPlain(t, in, j);
    }
  }
}

void DotKVChannelGroup(KVType t, const uint8_t* in, const float* q, int32_t n, int32_t g,
                       float* scores) {
  if (g <= 0) return;
  std::fill(scores, scores + g, 0.0f);
  if (n <= 0 || !KVGroupValid(t, g)) return;
  switch (t) {
    case KVType::kQ8: return DotChannelGroup<KVType::kQ8>(in, q, n, g, scores);
    case KVType::kQ4: return DotChannelGroup<KVType::kQ4>(in, q, n, g, scores);
    case KVType::kQ2: return DotChannelGroup<KVType::kQ2>(in, q, n, g, scores);
    default: {
      const size_t gb = KVGroupBytes(t, g);
      for (int32_t c = 0; c < n; ++c, in += gb) {
        for (int32_t j = 0; j < g; ++j) scores[j] += q[c] * LoadPlain(t, in, j);
      }
    }
  }
}

}  // namespace kvc
