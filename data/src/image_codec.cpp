#include "endoked/data/image_codec.h"

#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "endoked/core/error.h"

namespace endoked::data {
namespace {

struct TjDeleter {
  void operator()(void* h) const { tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

TjHandle& decompressor_slot() {
  thread_local TjHandle h;
  return h;
}
tjhandle decompressor() {
  TjHandle& h = decompressor_slot();
  if (!h) h.reset(tjInitDecompress());
  ENDOKED_CHECK(h != nullptr, "cannot create a TurboJPEG decompressor");
  return h.get();
}
// A TurboJPEG handle is not reliably reusable after a failed call (a later header read on it
// can report 0x0): raise the error and drop the handle so the next call gets a fresh one.
[[noreturn]] void fail_decompress(const char* what) {
  const std::string why = tjGetErrorStr2(decompressor());
  decompressor_slot().reset();
  ENDOKED_FAIL(what, why);
}
tjhandle compressor() {
  thread_local TjHandle h(tjInitCompress());
  ENDOKED_CHECK(h != nullptr, "cannot create a TurboJPEG compressor");
  return h.get();
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         p[3];
}

ImageInfo opencv_info(std::string_view bytes, ImageFormat format) {
  std::vector<unsigned char> buf(bytes.begin(), bytes.end());
  cv::Mat m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  if (m.empty()) ENDOKED_FAIL("cannot decode ", format_name(format), " image");
  return {format, m.cols, m.rows};
}

}  // namespace

ImageFormat sniff_format(std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const std::size_t n = b.size();
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 2 && p[0] == 'B' && p[1] == 'M') return ImageFormat::kBmp;
  if (n >= 4 && (std::memcmp(p, "II*\0", 4) == 0 || std::memcmp(p, "MM\0*", 4) == 0))
    return ImageFormat::kTiff;
  if (n >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kBmp:
      return "bmp";
    case ImageFormat::kTiff:
      return "tiff";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

ImageInfo read_image_info(std::string_view bytes) {
  if (bytes.empty()) ENDOKED_FAIL("zero-byte file");
  const ImageFormat f = sniff_format(bytes);
  switch (f) {
    case ImageFormat::kUnknown:
      ENDOKED_FAIL("not an image (unknown signature)");
    case ImageFormat::kJpeg: {
      int w = 0, h = 0, subsamp = 0, colorspace = 0;
      if (tjDecompressHeader3(decompressor(), reinterpret_cast<const unsigned char*>(bytes.data()),
                              static_cast<unsigned long>(bytes.size()), &w, &h, &subsamp,
                              &colorspace) != 0)
        fail_decompress("bad JPEG header: ");
      return {f, w, h};
    }
    case ImageFormat::kPng: {
      const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
      if (bytes.size() < 24 || std::memcmp(p + 12, "IHDR", 4) != 0)
        ENDOKED_FAIL("bad PNG header (no IHDR)");
      return {f, static_cast<int>(be32(p + 16)), static_cast<int>(be32(p + 20))};
    }
    default:
      return opencv_info(bytes, f);
  }
}

ImageInfo check_decodes(std::string_view bytes) {
  ImageInfo info = read_image_info(bytes);
  if (info.width <= 0 || info.height <= 0)
    ENDOKED_FAIL("image has no pixels (", info.width, "x", info.height, ")");
  if (info.format != ImageFormat::kJpeg) return opencv_info(bytes, info.format);
  // At the smallest DCT scale (a 1×1 minimum): the same entropy decoding, an eighth of the
  // IDCT and colour work; premature ends and other warnings are errors.
  thread_local std::vector<std::uint8_t> buffer;
  decode_rgb_into(bytes, 1, 1, DecodeOptions{}, nullptr, buffer);
  return info;
}

namespace {

cv::Mat decode_other_rgb(std::string_view bytes, ImageFormat format, double* scale) {
  std::vector<unsigned char> buf(bytes.begin(), bytes.end());
  cv::Mat bgr = cv::imdecode(buf, cv::IMREAD_COLOR);
  if (bgr.empty()) ENDOKED_FAIL("cannot decode ", format_name(format), " image");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (scale) *scale = 1.0;
  return rgb;
}

// Output size, scale and flags of one JPEG decode.
struct JpegPlan {
  int width = 0, height = 0, flags = 0;
  double scale = 1.0;
};

JpegPlan plan_jpeg(std::string_view bytes, int min_width, int min_height,
                   const DecodeOptions& options) {
  const ImageInfo info = read_image_info(bytes);
  if (info.width <= 0 || info.height <= 0)
    ENDOKED_FAIL("image has no pixels (", info.width, "x", info.height, ")");
  tjscalingfactor chosen = {1, 1};
  if (options.dct_scaling && (min_width > 0 || min_height > 0)) {
    int n = 0;
    const tjscalingfactor* factors = tjGetScalingFactors(&n);
    for (int i = 0; i < n; ++i) {
      const tjscalingfactor f = factors[i];
      if (f.num > f.denom) continue;  // only downscaling
      if (TJSCALED(info.width, f) < min_width || TJSCALED(info.height, f) < min_height) continue;
      if (f.num * chosen.denom < chosen.num * f.denom) chosen = f;  // smaller is faster
    }
  }
  JpegPlan p;
  p.width = TJSCALED(info.width, chosen);
  p.height = TJSCALED(info.height, chosen);
  // Fast IDCT/upsampling only where the result is reduced afterwards anyway.
  const bool reduced =
      p.width > min_width && p.height > min_height && (min_width > 0 || min_height > 0);
  const bool scaled = chosen.num != chosen.denom;
  p.flags = TJFLAG_STOPONWARNING |
            ((scaled || reduced) && options.fast ? TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE : 0);
  p.scale = static_cast<double>(chosen.num) / chosen.denom;
  return p;
}

void decompress(std::string_view bytes, const JpegPlan& p, std::uint8_t* dst) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto size = static_cast<unsigned long>(bytes.size());
  int w = 0, h = 0, subsampling = 0, colourspace = TJCS_RGB;
  if (tjDecompressHeader3(decompressor(), data, size, &w, &h, &subsampling, &colourspace) == 0 &&
      (colourspace == TJCS_CMYK || colourspace == TJCS_YCCK)) {
    // CMYK/YCCK JPEGs (print workflows, some scanners): TurboJPEG gives the four inks as stored
    // — Adobe's convention, inverted (255 = no ink) — and RGB is ink-free light times black's.
    thread_local std::vector<std::uint8_t> cmyk;
    cmyk.resize(static_cast<std::size_t>(p.width) * p.height * 4);
    if (tjDecompress2(decompressor(), data, size, cmyk.data(), p.width, 0, p.height, TJPF_CMYK,
                      p.flags) != 0)
      fail_decompress("corrupt JPEG: ");
    const std::size_t n = static_cast<std::size_t>(p.width) * p.height;
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned k = cmyk[4 * i + 3];
      for (int c = 0; c < 3; ++c)
        dst[3 * i + c] = static_cast<std::uint8_t>((cmyk[4 * i + c] * k + 127) / 255);
    }
    return;
  }
  if (tjDecompress2(decompressor(), data, size, dst, p.width, 0, p.height, TJPF_RGB, p.flags) != 0)
    fail_decompress("corrupt JPEG: ");
}

}  // namespace

cv::Mat decode_rgb(std::string_view bytes, int min_width, int min_height,
                   const DecodeOptions& options, double* scale) {
  const ImageFormat format = sniff_format(bytes);
  if (format != ImageFormat::kJpeg) return decode_other_rgb(bytes, format, scale);
  const JpegPlan p = plan_jpeg(bytes, min_width, min_height, options);
  cv::Mat rgb(p.height, p.width, CV_8UC3);
  decompress(bytes, p, rgb.data);
  if (scale) *scale = p.scale;
  return rgb;
}

cv::Mat decode_rgb_into(std::string_view bytes, int min_width, int min_height,
                        const DecodeOptions& options, double* scale,
                        std::vector<std::uint8_t>& buffer) {
  const ImageFormat format = sniff_format(bytes);
  if (format != ImageFormat::kJpeg) return decode_other_rgb(bytes, format, scale);
  const JpegPlan p = plan_jpeg(bytes, min_width, min_height, options);
  const std::size_t need = static_cast<std::size_t>(p.width) * p.height * 3;
  if (buffer.size() < need) buffer.resize(need);
  cv::Mat rgb(p.height, p.width, CV_8UC3, buffer.data());
  decompress(bytes, p, rgb.data);
  if (scale) *scale = p.scale;
  return rgb;
}

cv::Mat decode_gray(std::string_view bytes) {
  std::vector<unsigned char> buf(bytes.begin(), bytes.end());
  cv::Mat m = cv::imdecode(buf, cv::IMREAD_GRAYSCALE);
  if (m.empty()) ENDOKED_FAIL("cannot decode mask image (", format_name(sniff_format(bytes)), ")");
  return m;
}

std::string encode_jpeg_rgb(const std::uint8_t* rgb, int width, int height, int quality) {
  unsigned char* out = nullptr;
  unsigned long size = 0;
  if (tjCompress2(compressor(), rgb, width, 0, height, TJPF_RGB, &out, &size, TJSAMP_420, quality,
                  TJFLAG_FASTDCT) != 0) {
    const std::string why = tjGetErrorStr2(compressor());
    if (out) tjFree(out);
    ENDOKED_FAIL("JPEG encode failed: ", why);
  }
  std::string bytes(reinterpret_cast<const char*>(out), size);
  tjFree(out);
  return bytes;
}

}  // namespace endoked::data
