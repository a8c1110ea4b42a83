#include "endoked/core/text.h"

#include <errno.h>
#include <iconv.h>

#include <cctype>
#include <memory>

#include "endoked/core/error.h"

namespace endoked::text {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
      return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

namespace {
std::optional<std::string> convert(std::string_view s, const char* to, const char* from) {
  iconv_t cd = iconv_open(to, from);
  ENDOKED_CHECK(cd != reinterpret_cast<iconv_t>(-1), "iconv cannot convert ", from, " to ", to);
  std::unique_ptr<void, int (*)(iconv_t)> guard(cd, &iconv_close);
  std::string out(s.size() * 2 + 16, '\0');
  char* in_p = const_cast<char*>(s.data());
  std::size_t in_left = s.size();
  std::size_t out_used = 0;
  while (true) {
    char* out_p = out.data() + out_used;
    std::size_t out_left = out.size() - out_used;
    const std::size_t r = iconv(cd, &in_p, &in_left, &out_p, &out_left);
    out_used = out.size() - out_left;
    if (r != static_cast<std::size_t>(-1)) {
      // flush the shift state
      out_p = out.data() + out_used;
      out_left = out.size() - out_used;
      iconv(cd, nullptr, nullptr, &out_p, &out_left);
      out_used = out.size() - out_left;
      break;
    }
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    return std::nullopt;  // EILSEQ or EINVAL: not valid in the source encoding
  }
  out.resize(out_used);
  return out;
}
}  // namespace

std::optional<std::string> gb18030_to_utf8(std::string_view s) {
  return convert(s, "UTF-8", "GB18030");
}

std::string utf8_to_gb18030(std::string_view s) {
  auto r = convert(s, "GB18030", "UTF-8");
  ENDOKED_CHECK(r.has_value(), "text is not valid UTF-8");
  return *r;
}

Decoded to_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return {Encoding::kUtf8, std::string(s)};
  if (auto converted = gb18030_to_utf8(s)) return {Encoding::kGb18030, std::move(*converted)};
  return {Encoding::kInvalid, {}};
}

std::string trim(std::string_view s) {
  if (s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

void lower_in_place(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

std::string lower(std::string_view s) {
  std::string out(s);
  lower_in_place(out);
  return out;
}

}  // namespace endoked::text
