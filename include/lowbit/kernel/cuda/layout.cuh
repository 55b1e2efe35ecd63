#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// The GPU layout of a packed matrix's codes: tiles in tensor-core fragment order.
//
// Why repack: the kernels feed dequantized weights straight into mma.sync.m16n8k16 (fp16 in,
// fp32 accumulate) as the A operand, so each thread must find, in ONE coalesced 16-byte
// (4-bit) load, exactly the codes of its A fragments. Marlin and CUTLASS' mixed-dtype GEMMs
// reshuffle weights offline for the same reason (anchors.md A3). The CPU layout (bitpack.hpp,
// 32 codes of one row per block) stays the storage format; upload() repacks once.
//
// Geometry. The low-bit part [rows x qcols] is cut into tiles of 16 rows x 64 columns
// (rows padded to 16, columns to 64 with code 0; padded columns meet zero activations and
// padded rows are never written back). Tile (rt, kt) starts at byte (rt * nkt + kt) *
// 128 * bits, tiles of one row band being consecutive. Inside a tile, lane L of a warp
// (g = L / 4, qi = L % 4) owns rows {g, g + 8} x columns [16 qi, 16 qi + 16): 32 codes,
// 4 * bits bytes, stored at lane * 4 * bits (3 bits: low planes at lane * 8, high planes
// at 256 + lane * 4).
//
// Column permutation. The sum over k in an mma does not care which input column sits in
// which k slot, as long as A (weights) and B (activations) agree. We give thread qi the
// 16 CONSECUTIVE columns 16 qi .. 16 qi + 15, so its activations are two 16-byte loads:
// at k-step t (0..3) its k slots (2qi, 2qi+1) hold columns 16qi + 4t + {0, 1} and slots
// (2qi + 8, 2qi + 9) hold 16qi + 4t + {2, 3}. In fragment order a thread's 8 weights of
// step t are 4 pairs p: p = 0 (row g, slots 2qi..), 1 (row g+8, 2qi..), 2 (row g, 2qi+8..),
// 3 (row g+8, 2qi+8..); element h (0, 1) of a pair is the lower/upper fp16 half.
//
// Bits inside a lane's bytes (little-endian 32-bit words), chosen so that ONE AND/OR per pair
// (a single LOP3) gives two codes as fp16, with at most one shift per four pairs. OR-ing a
// code c into the mantissa of 1024 (0x6400) at bit b gives the exact fp16 1024 + 2^b c as
// long as the code stays inside the 10 mantissa bits (b + width <= 10); one fma with the
// constants 2^-b and -1024 * 2^-b then gives c exactly (the "magic number" conversion of
// Kim et al. / Marlin, with the shift folded into the fma):
//   4 bits: word t holds step t; pair p element h at bit 4p + 16h (pairs 2, 3 after >> 8).
//   2 bits: word t/2 holds steps t, t+1; bit 2 (4 (t%2) + p) + 16h (odd t after >> 8).
//   3 bits: its low two bits as in the 2-bit layout; the high bit in a 32-bit word at bit
//           (2p + 2 + r_t + 16h) mod 32 with r_t = 0, 1, 8, 9 for t = 0..3: rotated right by
//           r_t, the high bit sits two bits above the pair's low bits (bit 2p + 2 + 16h), so
//           one LOP3 merges them (the four rotations give the 32 positions exactly once).
//   8 bits: word 2t + p/2; byte 2 (p%2) + h.
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__
#else
#define LOWBIT_HD
#endif

namespace lowbit::inline LOWBIT_ABI::kernel::cuda {

inline constexpr int tile_rows = 16;
inline constexpr int tile_cols = 64;

LOWBIT_HD constexpr int lane_bytes(int bits) { return 4 * bits; }
LOWBIT_HD constexpr int tile_bytes(int bits) { return 32 * lane_bytes(bits); }  // = 16*64*bits/8

// Where the code at (row r, column c) of a tile lives: the byte and bit of its low part
// (all of it except the 3-bit high bit), and for 3 bits the byte and bit of the high bit.
struct code_slot {
  int byte = 0;
  int shift = 0;
  int hi_byte = -1;
  int hi_shift = 0;
};

LOWBIT_HD constexpr code_slot slot_of(int bits, int r, int c) {
  const int lane = (r % 8) * 4 + c / 16;
  const int cl = c % 16;
  const int t = cl / 4;
  const int h = cl % 2;
  const int p = 2 * ((cl % 4) / 2) + r / 8;
  code_slot s;
  switch (bits) {
    case 4: {
      const int bit = 4 * p + 16 * h;
      s.byte = lane * 16 + t * 4 + bit / 8;
      s.shift = bit % 8;
      break;
    }
    case 2:
    case 3: {
      const int bit = 2 * (4 * (t % 2) + p) + 16 * h;
      s.byte = lane * 8 + (t / 2) * 4 + bit / 8;
      s.shift = bit % 8;
      if (bits == 3) {
        const int rot = (t & 1) + 8 * (t >> 1);  // r_t = 0, 1, 8, 9
        const int hb = (2 * p + 2 + rot + 16 * h) % 32;
        s.hi_byte = 256 + lane * 4 + hb / 8;
        s.hi_shift = hb % 8;
      }
      break;
    }
    default: {  // 8
      s.byte = lane * 32 + (2 * t + p / 2) * 4 + 2 * (p % 2) + h;
      s.shift = 0;
      break;
    }
  }
  return s;
}

// Writes / reads one code of a tile (host side: upload and the layout test).
inline void put_code(std::uint8_t* tile, int bits, int r, int c, unsigned code) {
  const code_slot s = slot_of(bits, r, c);
  const unsigned lo_mask = bits == 3 ? 3u : (1u << bits) - 1u;
  tile[s.byte] = static_cast<std::uint8_t>(tile[s.byte] | ((code & lo_mask) << s.shift));
  if (s.hi_byte >= 0) tile[s.hi_byte] = static_cast<std::uint8_t>(tile[s.hi_byte] | (((code >> 2) & 1u) << s.hi_shift));
}
LOWBIT_HD inline unsigned get_code(const std::uint8_t* tile, int bits, int r, int c) {
  const code_slot s = slot_of(bits, r, c);
  const unsigned lo_mask = bits == 3 ? 3u : (1u << bits) - 1u;
  unsigned code = (static_cast<unsigned>(tile[s.byte]) >> s.shift) & lo_mask;
  if (s.hi_byte >= 0) code |= ((static_cast<unsigned>(tile[s.hi_byte]) >> s.hi_shift) & 1u) << 2;
  return code;
}

}  // namespace lowbit::kernel::cuda
