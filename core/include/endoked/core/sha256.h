#pragma once
// SHA-256 (FIPS 180-4), streaming, computed by OpenSSL's EVP interface. Used for shard checksums
// and content hashes. Not thread-safe per object; separate objects may be used from any thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace endoked {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Length-prefixed update: hashing fields this way keeps ("ab","c") and ("a","bc") apart.
  void update_field(std::string_view s);
  void update_i64(std::int64_t v);  // 8 bytes, little-endian
  std::array<std::uint8_t, 32> digest();
  /// Lower-case hex of the digest; the object is finished afterwards.
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  bool done_ = false;
};

std::string sha256_hex(std::string_view data);
/// Streams a file; throws Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace endoked
