#pragma once
// SHA-256 (FIPS 180-4), streaming. Used for shard checksums and content hashes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace endoked {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Length-prefixed update: hashing fields this way keeps ("ab","c") and ("a","bc") apart.
  void update_field(std::string_view s);
  void update_i64(std::int64_t v);
  std::array<std::uint8_t, 32> digest();
  /// Lower-case hex of the digest; the object is finished afterwards.
  std::string hex();

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
  bool done_ = false;
};

std::string sha256_hex(std::string_view data);
/// Streams a file; throws Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace endoked
