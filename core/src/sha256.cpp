#include "endoked/core/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "endoked/core/error.h"
#include "endoked/core/text.h"

namespace endoked {

struct Sha256::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ENDOKED_CHECK(ctx_->md != nullptr && EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1,
                "OpenSSL: SHA-256 initialisation failed");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t size) {
  ENDOKED_CHECK(!done_, "Sha256::update after digest");
  ENDOKED_CHECK(EVP_DigestUpdate(ctx_->md, data, size) == 1, "OpenSSL: SHA-256 update of ", size,
                " bytes failed");
}

void Sha256::update_field(std::string_view s) {
  update_i64(static_cast<std::int64_t>(s.size()));
  update(s);
}

void Sha256::update_i64(std::int64_t v) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i)
    b[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i));
  update(b, 8);
}

std::array<std::uint8_t, 32> Sha256::digest() {
  ENDOKED_CHECK(!done_, "Sha256::digest twice");
  std::array<std::uint8_t, 32> out{};
  unsigned int n = 0;
  ENDOKED_CHECK(EVP_DigestFinal_ex(ctx_->md, out.data(), &n) == 1 && n == 32,
                "OpenSSL: SHA-256 final failed");
  done_ = true;
  return out;
}

std::string Sha256::hex() {
  const auto d = digest();
  return text::hex(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  ENDOKED_CHECK(f != nullptr, "cannot open '", path, "' for checksum: ", std::strerror(errno));
  Sha256 h;
  constexpr std::size_t kBuffer = 1 << 20;
  std::unique_ptr<char[]> buf(new char[kBuffer]);  // not zeroed: fread fills what is used
  std::size_t n;
  while ((n = std::fread(buf.get(), 1, kBuffer, f.get())) > 0) h.update(buf.get(), n);
  ENDOKED_CHECK(!std::ferror(f.get()), "read error on '", path, "'");
  return h.hex();
}

}  // namespace endoked
