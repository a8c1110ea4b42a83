#include "endoked/core/text.h"

#include <errno.h>
#include <iconv.h>

#include <cctype>
#include <cstdint>
#include <memory>

#include "endoked/core/error.h"

namespace endoked::text {

namespace {
// Length of the well-formed UTF-8 sequence at p[i] (its code point in `cp`), 0 when there is
// none (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, truncated).
int utf8_sequence(const unsigned char* p, std::size_t n, std::size_t i, std::uint32_t& cp) {
  const unsigned char c = p[i];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  int len;
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
    return 0;
  }
  if (i + len > n) return 0;
  for (int k = 1; k < len; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
    return 0;  // overlong
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}
}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::uint32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const int len = utf8_sequence(p, s.size(), i, cp);
    if (len == 0) return false;
    i += static_cast<std::size_t>(len);
  }
  return true;
}

std::string escape_invalid_utf8(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::string out;
  out.reserve(s.size());
  std::uint32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const int len = utf8_sequence(p, s.size(), i, cp);
    if (len > 0) {
      out.append(s.substr(i, static_cast<std::size_t>(len)));
      i += static_cast<std::size_t>(len);
    } else {
      out += "\\x";
      out += kHex[p[i] >> 4];
      out += kHex[p[i] & 15];
      ++i;
    }
  }
  return out;
}

std::string hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string unhex(std::string_view h) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    ENDOKED_FAIL("not a hex string: '", escape_invalid_utf8(h.substr(0, 64)), "'");
  };
  ENDOKED_CHECK(h.size() % 2 == 0, "hex string of odd length ", h.size());
  std::string out(h.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(nibble(h[2 * i]) * 16 + nibble(h[2 * i + 1]));
  return out;
}

bool reads_as_chinese(std::string_view gb18030, std::string_view utf8) {
  // The bytes: Chinese text is almost all GB2312 (both bytes of a character ≥ 0xA1); an
  // accented Latin-1 letter followed by an ASCII letter pairs into a character whose second
  // byte is ASCII (0x40–0x7E), and four-byte sequences are rare characters.
  std::int64_t multibyte = 0, odd = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(gb18030.data());
  const std::size_t nb = gb18030.size();
  auto letter = [](unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  bool after_letter = false;  // the previous character was a single-byte ASCII letter
  for (std::size_t i = 0; i < nb;) {
    if (b[i] < 0x80) {
      after_letter = letter(b[i]);
      ++i;
      continue;
    }
    ++multibyte;
    if (i + 1 < nb && b[i + 1] >= 0x30 && b[i + 1] <= 0x39) {
      ++odd;  // four-byte sequence
      i += 4;
    } else {
      // An ASCII second byte is common in GBK's extension (黃 FC 53, 華 C8 41): suspicious only
      // inside a Latin word, with an ASCII letter as the character before or after the pair.
      if (i + 1 < nb && b[i + 1] < 0x80 && (after_letter || (i + 2 < nb && letter(b[i + 2])))) ++odd;
      i += 2;
    }
    after_letter = false;
  }
  if (odd * 4 > multibyte) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
  const std::size_t n = utf8.size();
  auto is_cjk = [](std::uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||    // ideographs
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FA1F) ||  // compat, ext. B+
           (c >= 0x3000 && c <= 0x30FF) ||   // CJK punctuation, kana (GB2312 carries kana)
           (c >= 0xFF00 && c <= 0xFFEF) ||   // full-width forms
           (c >= 0x2000 && c <= 0x206F) ||   // general punctuation: “” — …
           (c >= 0x2100 && c <= 0x27BF) ||   // ℃ № Ⅰ ← ① ─ ■ ★ (GB2312 symbol rows)
           (c >= 0x0391 && c <= 0x03C9) ||   // Greek (GB2312 row 6)
           (c >= 0x0410 && c <= 0x0451) ||   // Cyrillic (row 7)
           c == 0x00B7 || c == 0x00D7 || c == 0x00F7 || c == 0x00B0 || c == 0x00B1;
  };
  std::int64_t non_ascii = 0, cjk = 0, between_letters = 0;
  std::uint32_t prev = 0, cp = 0;
  std::size_t i = 0;
  while (i < n) {
    const int len = utf8_sequence(p, n, i, cp);
    if (len == 0) return false;
    i += static_cast<std::size_t>(len);
    if (cp >= 0x80) {
      ++non_ascii;
      if (is_cjk(cp)) ++cjk;
      std::uint32_t next = 0;
      if (i < n) utf8_sequence(p, n, i, next);
      if (prev < 0x80 && next < 0x80 && letter(static_cast<unsigned char>(prev)) &&
          letter(static_cast<unsigned char>(next)))
        ++between_letters;
    }
    prev = cp;
  }
  if (non_ascii == 0) return true;
  return cjk * 10 >= non_ascii * 7 && between_letters * 4 <= non_ascii;
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

const char* encoding_name(Encoding e) {
  switch (e) {
    case Encoding::kUtf8: return "utf-8";
    case Encoding::kGb18030: return "gb18030";
    case Encoding::kLatin1: return "latin-1";
    case Encoding::kCp1252: return "cp1252";
    case Encoding::kInvalid: break;
  }
  return "invalid";
}

std::optional<Encoding> parse_encoding(std::string_view name, std::string_view key) {
  const std::string n = lower(name);
  if (n == "auto") return std::nullopt;
  if (n == "utf-8" || n == "utf8") return Encoding::kUtf8;
  if (n == "gb18030" || n == "gbk" || n == "gb2312") return Encoding::kGb18030;
  if (n == "latin-1" || n == "latin1" || n == "iso-8859-1") return Encoding::kLatin1;
  if (n == "cp1252" || n == "windows-1252") return Encoding::kCp1252;
  ENDOKED_FAIL(key, " must be auto, utf-8, gb18030, latin-1 or cp1252, got '",
               escape_invalid_utf8(name), "'");
}

Decoded to_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return {Encoding::kUtf8, std::string(s), {}};
  auto converted = gb18030_to_utf8(s);
  if (!converted) return {Encoding::kInvalid, {}, "neither UTF-8 nor GB18030"};
  if (!reads_as_chinese(s, *converted))
    return {Encoding::kInvalid, {},
            "not UTF-8; it decodes as GB18030 but does not read as Chinese (Latin-1?): set the "
            "encoding explicitly"};
  return {Encoding::kGb18030, std::move(*converted), {}};
}

Decoded to_utf8(std::string_view s, std::optional<Encoding> forced) {
  if (!forced) return to_utf8(s);
  std::optional<std::string> out;
  switch (*forced) {
    case Encoding::kUtf8:
      if (is_valid_utf8(s)) out = std::string(s);
      break;
    case Encoding::kGb18030: out = gb18030_to_utf8(s); break;
    case Encoding::kLatin1: out = convert(s, "UTF-8", "ISO-8859-1"); break;
    case Encoding::kCp1252: out = convert(s, "UTF-8", "CP1252"); break;
    case Encoding::kInvalid: break;
  }
  if (!out) return {Encoding::kInvalid, {}, std::string("not valid ") + encoding_name(*forced)};
  return {*forced, std::move(*out), {}};
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
