// Rendering of synthetic colonoscopy frames. Pixels are float BGR in [0, 1] until the end.
#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "endoked/core/error.h"
#include "endoked/core/seed.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/synth.h"

using nlohmann::json;

namespace endoked::data {
namespace {

cv::Vec3f bgr(double r, double g, double b) {
  return cv::Vec3f(static_cast<float>(b), static_cast<float>(g), static_cast<float>(r));
}

// A smooth random field in [lo, hi]: a coarse grid of values, upsampled bicubically.
cv::Mat smooth_field(Rng& r, int w, int h, int gx, int gy, double lo, double hi, int channels) {
  cv::Mat small(gy, gx, CV_32FC(channels));
  auto* p = small.ptr<float>();
  for (int i = 0; i < gx * gy * channels; ++i) p[i] = static_cast<float>(r.uniform(lo, hi));
  cv::Mat big;
  cv::resize(small, big, cv::Size(w, h), 0, 0, cv::INTER_CUBIC);
  return big;
}

// Haustral folds: broad bright ridges with a soft shadow on their far side, drawn at half
// resolution (they are smooth) and applied in one pass.
void draw_folds(Rng& r, cv::Mat& img, cv::Point2f lumen, float scale) {
  const int w = img.cols, h = img.rows;
  const int hw = (w + 1) / 2, hh = (h + 1) / 2;
  cv::Mat ridge = cv::Mat::zeros(hh, hw, CV_32F), shadow = cv::Mat::zeros(hh, hw, CV_32F);
  const int n = static_cast<int>(r.randint(2, 5));
  const double aspect = r.uniform(0.6, 1.0), tilt = r.uniform(0, 180);
  const cv::Point2f c(lumen.x * 0.5f, lumen.y * 0.5f);
  double radius = r.uniform(0.12, 0.22) * std::max(hw, hh);
  float thick_max = 1;
  for (int k = 0; k < n; ++k) {
    const double start = r.uniform(0, 360), span = r.uniform(140, 330);
    const int thick = std::max(2, static_cast<int>(r.uniform(4, 9) * scale * (1 + 0.3 * k)));
    thick_max = std::max(thick_max, static_cast<float>(thick));
    const cv::Size axes(static_cast<int>(radius), static_cast<int>(radius * aspect));
    cv::ellipse(ridge, c, axes, tilt, start, start + span, cv::Scalar(1.0), thick, cv::LINE_AA);
    const double rs = radius + thick * 0.8;
    cv::ellipse(shadow, c, cv::Size(static_cast<int>(rs), static_cast<int>(rs * aspect)), tilt,
                start, start + span, cv::Scalar(1.0), std::max(1, thick / 2), cv::LINE_AA);
    radius *= r.uniform(1.45, 1.9);
  }
  cv::GaussianBlur(ridge, ridge, cv::Size(0, 0), thick_max * 0.35);
  cv::GaussianBlur(shadow, shadow, cv::Size(0, 0), thick_max * 0.3);
  cv::resize(ridge, ridge, img.size(), 0, 0, cv::INTER_LINEAR);
  cv::resize(shadow, shadow, img.size(), 0, 0, cv::INTER_LINEAR);
  const float depth = static_cast<float>(r.uniform(0.25, 0.45));
  for (int y = 0; y < h; ++y) {
    auto* px = img.ptr<cv::Vec3f>(y);
    const float* rp = ridge.ptr<float>(y);
    const float* sp = shadow.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      const float lift = 1.0f + 0.22f * std::min(1.0f, rp[x]);
      px[x] = px[x] * (lift * (1.0f - depth * std::min(1.0f, sp[x])));
    }
  }
}

void draw_vessels(Rng& r, cv::Mat& img, float scale) {
  const int w = img.cols, h = img.rows;
  cv::Mat layer = cv::Mat::zeros(h, w, CV_32F);
  const int n = static_cast<int>(r.randint(3, 9));
  for (int k = 0; k < n; ++k) {
    cv::Point2d p(r.uniform(0, w), r.uniform(0, h));
    double angle = r.uniform(0, 2 * M_PI);
    const int steps = static_cast<int>(r.randint(15, 60));
    const float strength = static_cast<float>(r.uniform(0.4, 1.0));
    for (int s = 0; s < steps; ++s) {
      angle += r.normal(0, 0.35);
      const double len = r.uniform(2, 6) * scale;
      cv::Point2d q(p.x + std::cos(angle) * len, p.y + std::sin(angle) * len);
      cv::line(layer, p, q, cv::Scalar(strength), 1, cv::LINE_AA);
      if (r.bernoulli(0.05)) {  // a branch
        cv::Point2d b(q.x + std::cos(angle + 1.0) * len * 3, q.y + std::sin(angle + 1.0) * len * 3);
        cv::line(layer, q, b, cv::Scalar(strength * 0.7), 1, cv::LINE_AA);
      }
      p = q;
    }
  }
  cv::GaussianBlur(layer, layer, cv::Size(0, 0), 0.6);
  const cv::Vec3f tint = bgr(0.25, 0.55, 0.45);  // vessels take green and blue out, keep red
  for (int y = 0; y < h; ++y) {
    auto* px = img.ptr<cv::Vec3f>(y);
    const float* lp = layer.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      const float a = 0.5f * std::min(1.0f, lp[x]);
      for (int c = 0; c < 3; ++c) px[x][c] *= 1.0f - a * tint[c];
    }
  }
}

// Specular highlights: small bright ellipses scattered around `at` (drawn into `spots`).
void add_specular(Rng& r, cv::Mat& spots, cv::Point2f at, float spread, int count, float scale) {
  for (int k = 0; k < count; ++k) {
    const cv::Point2f c(at.x + static_cast<float>(r.normal(0, spread)),
                        at.y + static_cast<float>(r.normal(0, spread)));
    const cv::Size axes(std::max(1, static_cast<int>(r.uniform(0.8, 3.5) * scale)),
                        std::max(1, static_cast<int>(r.uniform(0.6, 2.0) * scale)));
    cv::ellipse(spots, c, axes, r.uniform(0, 180), 0, 360, cv::Scalar(1.0), -1, cv::LINE_AA);
  }
}

void blend_specular(cv::Mat& img, cv::Mat& spots, float scale) {
  cv::GaussianBlur(spots, spots, cv::Size(0, 0), 0.8 * scale);
  for (int y = 0; y < img.rows; ++y) {
    auto* px = img.ptr<cv::Vec3f>(y);
    const float* sp = spots.ptr<float>(y);
    for (int x = 0; x < img.cols; ++x) {
      if (sp[x] <= 0.0f) continue;
      const float a = std::min(1.0f, sp[x] * 1.3f);
      px[x] = px[x] * (1 - a) + cv::Vec3f(0.97f, 0.98f, 1.0f) * a;
    }
  }
}

struct PolypLayer {
  cv::Mat mask;  // CV_8U, 255 inside (before occlusion), full frame
  cv::Point2f peak;
  float radius = 0;
};

PolypLayer draw_polyp(Rng& r, cv::Mat& img, const SynthPolyp& p, cv::Point2f lumen, float scale) {
  const int w = img.cols, h = img.rows;
  Rng look(p.appearance_seed);  // the same polyp looks the same in every frame
  const bool cancer = p.pathology == "cancer", adenoma = p.pathology == "adenoma";
  const bool flat = p.morphology == "flat";
  // Apparent radius: size in mm times a per-frame viewing distance.
  float radius = static_cast<float>(p.size_mm * r.uniform(2.2, 4.5) * scale);
  radius = std::clamp(radius, 9.0f * scale, 0.36f * static_cast<float>(std::min(w, h)));
  cv::Point2f c;
  if (r.bernoulli(0.15)) {  // cut by the border
    const int side = static_cast<int>(r.randint(0, 3));
    const float t = static_cast<float>(r.uniform(0.25, 0.75));
    const float in = radius * static_cast<float>(r.uniform(0.1, 0.6));
    c = side == 0   ? cv::Point2f(t * w, in)
        : side == 1 ? cv::Point2f(t * w, h - in)
        : side == 2 ? cv::Point2f(in, t * h)
                    : cv::Point2f(w - in, t * h);
  } else {
    c = cv::Point2f(static_cast<float>(r.uniform(0.2, 0.8) * w),
                    static_cast<float>(r.uniform(0.2, 0.8) * h));
  }
  // Outline r(θ) = R (1 + Σ a_k cos(kθ + φ_k)); cancers are more irregular.
  std::vector<cv::Point> outline;
  double amp[6], phase[6];
  for (int k = 2; k < 6; ++k) {
    amp[k] = look.uniform(0, cancer ? 0.14 : 0.05) / (k - 1);
    phase[k] = look.uniform(0, 2 * M_PI);
  }
  const double aspect = r.uniform(0.7, 1.0), rot = r.uniform(0, 2 * M_PI);
  for (int i = 0; i < 72; ++i) {
    const double th = 2 * M_PI * i / 72;
    double rr = 1;
    for (int k = 2; k < 6; ++k) rr += amp[k] * std::cos(k * th + phase[k]);
    const double ex = rr * radius * std::cos(th), ey = rr * radius * aspect * std::sin(th);
    outline.emplace_back(
        static_cast<int>(std::lround(c.x + ex * std::cos(rot) - ey * std::sin(rot))),
        static_cast<int>(std::lround(c.y + ex * std::sin(rot) + ey * std::cos(rot))));
  }
  PolypLayer layer;
  layer.radius = radius;
  layer.mask = cv::Mat::zeros(h, w, CV_8U);
  cv::fillPoly(layer.mask, std::vector<std::vector<cv::Point>>{outline}, cv::Scalar(255),
               cv::LINE_8);
  if (p.morphology == "pedunculated") {  // the stalk runs toward the lumen
    cv::Point2f dir = lumen - c;
    const float n = std::max(1.0f, std::sqrt(dir.dot(dir)));
    dir *= 1.0f / n;
    const cv::Point2f end = c + dir * radius * static_cast<float>(r.uniform(1.3, 2.0));
    cv::line(layer.mask, c, end, cv::Scalar(255), std::max(3, static_cast<int>(radius * 0.45f)),
             cv::LINE_8);
  }
  // Work only in the polyp's neighbourhood.
  const cv::Rect bounds = cv::boundingRect(layer.mask);
  const int margin = static_cast<int>(6 * scale) + 4;
  const cv::Rect roi = (bounds + cv::Point(-margin, -margin) + cv::Size(2 * margin, 2 * margin)) &
                       cv::Rect(0, 0, w, h);
  if (roi.area() == 0 || bounds.area() == 0) return layer;
  const cv::Mat mask = layer.mask(roi);
  cv::Mat view = img(roi);
  // Dome height from the distance to the edge.
  cv::Mat dist;
  cv::distanceTransform(mask, dist, cv::DIST_L2, 3);
  double max_d = 1;
  cv::Point max_at;
  cv::minMaxLoc(dist, nullptr, &max_d, nullptr, &max_at);
  layer.peak =
      cv::Point2f(static_cast<float>(max_at.x + roi.x), static_cast<float>(max_at.y + roi.y));
  cv::Mat height;
  cv::sqrt(dist / std::max(1.0, max_d), height);
  cv::Mat gx, gy;
  cv::Sobel(height, gx, CV_32F, 1, 0, 3);
  cv::Sobel(height, gy, CV_32F, 0, 1, 3);
  cv::Mat soft, halo;
  mask.convertTo(soft, CV_32F, 1.0 / 255);
  cv::GaussianBlur(soft, soft, cv::Size(0, 0), flat ? 1.6 : 0.8);
  cv::GaussianBlur(soft, halo, cv::Size(0, 0), 2.5 * scale);

  cv::Vec3f colour = p.pathology == "hyperplastic" ? bgr(0.95, 0.62, 0.56)
                     : adenoma                     ? bgr(0.88, 0.36, 0.33)
                                                   : bgr(0.62, 0.22, 0.26);
  for (int ch = 0; ch < 3; ++ch) colour[ch] *= static_cast<float>(look.uniform(0.93, 1.07));
  const double freq = look.uniform(0.6, 1.0) / scale, pit_angle = look.uniform(0, M_PI);
  const double wobble = look.uniform(0.06, 0.12) / scale;
  cv::Mat coarse = smooth_field(look, roi.width, roi.height, 7, 6, -1, 1, 1);
  const float strength = flat ? 0.6f : 0.96f;
  const cv::Point2f ulcer(layer.peak.x - roi.x, layer.peak.y - roi.y);
  const float ulcer_r = radius * static_cast<float>(look.uniform(0.25, 0.45));
  const float lx = -0.5f, ly = -0.7f;  // light from the upper left
  const float slope_scale = radius / 16.0f;
  const float ca = static_cast<float>(std::cos(pit_angle)),
              sa = static_cast<float>(std::sin(pit_angle));
  for (int y = 0; y < roi.height; ++y) {
    auto* px = view.ptr<cv::Vec3f>(y);
    const float* hp = height.ptr<float>(y);
    const float* gxp = gx.ptr<float>(y);
    const float* gyp = gy.ptr<float>(y);
    const float* sp = soft.ptr<float>(y);
    const float* hl = halo.ptr<float>(y);
    const float* cp = coarse.ptr<float>(y);
    const int gy0 = y + roi.y;
    for (int x = 0; x < roi.width; ++x) {
      // a faint shadow ring outside the edge
      px[x] *= 1.0f - 0.3f * std::max(0.0f, hl[x] - sp[x]) * (flat ? 0.3f : 1.0f);
      if (sp[x] <= 0.001f) continue;
      const int gx0 = x + roi.x;
      float texture = 1.0f;
      if (adenoma) {  // tubular pits: wavy parallel grooves
        const float u = gx0 * ca + gy0 * sa;
        texture +=
            0.11f *
            std::sin(static_cast<float>(freq) * u +
                     2.0f * std::sin(static_cast<float>(wobble) * (gx0 * sa - gy0 * ca)) + cp[x]);
      } else if (cancer) {
        texture += 0.2f * cp[x];
      } else {  // hyperplastic: fine, faint dots
        texture += 0.04f * std::sin(1.9f * gx0 / scale) * std::sin(1.9f * gy0 / scale);
      }
      // Sobel is 8× the slope; slopes scale with 1/radius, so normalise and clamp.
      const float slope = std::clamp((gxp[x] * lx + gyp[x] * ly) * slope_scale, -1.0f, 1.0f);
      const float lambert = 0.85f + (flat ? 0.1f : 0.3f) * slope;
      cv::Vec3f col = colour * ((0.72f + 0.38f * hp[x]) * lambert * texture);
      if (cancer) {  // an ulcer with fibrin near the top
        const float d = std::hypot(x - ulcer.x, y - ulcer.y) / ulcer_r;
        if (d < 1.0f) {
          const float f = 0.75f * (1.0f - d) * (1.0f - d);
          col = col * (1 - f) + bgr(0.82, 0.74, 0.55) * f * (1.0f + 0.25f * cp[x]);
        }
      }
      const float a = strength * sp[x];
      px[x] = px[x] * (1 - a) + col * a;
    }
  }
  return layer;
}

}  // namespace

std::vector<std::vector<int>> frame_assignment(const SynthOptions& opt, const SynthExam& exam) {
  Rng r(opt.seed, "synth.assign", static_cast<std::uint64_t>(exam.index));
  std::vector<std::vector<int>> frames(static_cast<std::size_t>(exam.image_count));
  std::vector<int> order(frames.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  for (std::size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1],
              order[static_cast<std::size_t>(r.randint(0, static_cast<std::int64_t>(i) - 1))]);
  std::size_t next = 0;
  for (std::size_t p = 0; p < exam.polyps.size(); ++p) {
    const int views = static_cast<int>(r.randint(2, 4));
    for (int v = 0; v < views; ++v) {
      // Prefer frames without a polyp; once all are used, frames show two polyps.
      frames[static_cast<std::size_t>(order[next % order.size()])].push_back(static_cast<int>(p));
      ++next;
    }
  }
  for (auto& f : frames) {
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
  }
  return frames;
}

SynthFrame render_frame(const SynthOptions& opt, const SynthExam& exam, int frame,
                        const std::vector<int>& show) {
  const int w = opt.width, h = opt.height;
  ENDOKED_CHECK(w >= 64 && h >= 64, "synth frames must be at least 64x64, got ", w, "x", h);
  Rng r(opt.seed, "synth.frame",
        static_cast<std::uint64_t>(exam.index) * 1024 + static_cast<std::uint64_t>(frame));
  const float scale = static_cast<float>(std::min(w, h)) / 256.0f;

  // Mucosa: a pink-red base with slow variation in brightness and (less) in hue, a dark lumen
  // and the vignette of the endoscope's light — all smooth, so computed on a coarse grid.
  const cv::Vec3f base = bgr(r.uniform(0.80, 0.93), r.uniform(0.40, 0.50), r.uniform(0.35, 0.44));
  const cv::Point2f lumen(static_cast<float>(w * r.uniform(0.25, 0.75)),
                          static_cast<float>(h * r.uniform(0.25, 0.75)));
  const float lumen_r = static_cast<float>(r.uniform(0.07, 0.14) * std::min(w, h));
  const float vig = static_cast<float>(r.uniform(0.35, 0.6));
  const int gw = w / 8 + 2, gh = h / 8 + 2;
  cv::Mat bright = smooth_field(r, gw, gh, 5, 4, 0.88, 1.1, 1);
  cv::Mat hue = smooth_field(r, gw, gh, 4, 3, 0.96, 1.04, 3);
  cv::Mat coarse(gh, gw, CV_32FC3);
  const float cx = w * 0.5f, cy = h * 0.5f, rmax = std::hypot(cx, cy);
  for (int y = 0; y < gh; ++y) {
    for (int x = 0; x < gw; ++x) {
      const float px = (x + 0.5f) * w / gw, py = (y + 0.5f) * h / gh;
      const float d2 = (px - lumen.x) * (px - lumen.x) + (py - lumen.y) * (py - lumen.y);
      const float light = 0.2f + 0.8f * (1.0f - std::exp(-d2 / (2 * lumen_r * lumen_r)));
      const float dv = std::hypot(px - cx, py - cy) / rmax;
      const float l = light * (1.0f - vig * dv * dv * dv) * bright.at<float>(y, x);
      const cv::Vec3f hv = hue.at<cv::Vec3f>(y, x);
      coarse.at<cv::Vec3f>(y, x) =
          cv::Vec3f(base[0] * hv[0] * l, base[1] * hv[1] * l, base[2] * hv[2] * l);
    }
  }
  cv::Mat img;
  cv::resize(coarse, img, cv::Size(w, h), 0, 0, cv::INTER_CUBIC);
  draw_folds(r, img, lumen, scale);
  draw_vessels(r, img, scale);

  std::vector<PolypLayer> layers;
  for (int p : show)
    layers.push_back(draw_polyp(r, img, exam.polyps[static_cast<std::size_t>(p)], lumen, scale));

  // A fold in front of a polyp hides part of it: a mucosal band with a bright crest.
  cv::Mat occluder = cv::Mat::zeros(h, w, CV_8U);
  for (const auto& l : layers) {
    if (!r.bernoulli(0.2)) continue;
    const float off = l.radius * static_cast<float>(r.uniform(0.3, 0.9));
    const double ang = r.uniform(0, 2 * M_PI);
    const cv::Point2f centre(l.peak.x + off * static_cast<float>(std::cos(ang)) * 3.0f,
                             l.peak.y + off * static_cast<float>(std::sin(ang)) * 3.0f);
    const int big = static_cast<int>(off * 3.0f + l.radius * 0.2f);
    const double a0 = ang * 180 / M_PI + 180;
    cv::ellipse(occluder, centre, cv::Size(big, big), 0, a0 - 40, a0 + 40, cv::Scalar(255),
                std::max(4, static_cast<int>(l.radius * r.uniform(0.3, 0.6))), cv::LINE_8);
  }
  if (cv::countNonZero(occluder) > 0) {
    cv::Mat soft, crest;
    occluder.convertTo(soft, CV_32F, 1.0 / 255);
    cv::GaussianBlur(soft, soft, cv::Size(0, 0), 1.0);
    cv::GaussianBlur(soft, crest, cv::Size(0, 0), 3.0 * scale);
    const cv::Vec3f fold = base * 1.05f;
    for (int y = 0; y < h; ++y) {
      auto* px = img.ptr<cv::Vec3f>(y);
      const float* sp = soft.ptr<float>(y);
      const float* cp = crest.ptr<float>(y);
      for (int x = 0; x < w; ++x)
        px[x] = px[x] * (1 - sp[x]) + fold * (sp[x] * (0.75f + 0.35f * cp[x]));
    }
  }

  // Highlights on polyp domes and scattered on the wall.
  cv::Mat spots = cv::Mat::zeros(h, w, CV_32F);
  for (const auto& l : layers)
    add_specular(r, spots, l.peak, 0.25f * l.radius, static_cast<int>(r.randint(1, 4)), scale);
  add_specular(r, spots, cv::Point2f(w * 0.5f, h * 0.5f), 0.3f * w,
               static_cast<int>(r.randint(2, 9)), scale);
  blend_specular(img, spots, scale);

  // The black corners of the endoscope's view.
  cv::Mat corners = cv::Mat::zeros(h, w, CV_8U);
  const int cut = static_cast<int>(0.12 * std::min(w, h));
  for (const auto& tri : std::vector<std::vector<cv::Point>>{
           {{0, 0}, {cut, 0}, {0, cut}},
           {{w - 1, 0}, {w - 1 - cut, 0}, {w - 1, cut}},
           {{0, h - 1}, {cut, h - 1}, {0, h - 1 - cut}},
           {{w - 1, h - 1}, {w - 1 - cut, h - 1}, {w - 1, h - 1 - cut}}})
    cv::fillConvexPoly(corners, tri, cv::Scalar(255));
  img.setTo(cv::Scalar::all(0.02), corners);

  // Optics: defocus or motion blur, then sensor noise.
  if (r.bernoulli(0.15)) {
    const int len = static_cast<int>(r.randint(3, 7));
    cv::Mat k = cv::Mat::zeros(len, len, CV_32F);
    const double a = r.uniform(0, M_PI);
    cv::line(k, cv::Point2d(len / 2.0 - std::cos(a) * len / 2, len / 2.0 - std::sin(a) * len / 2),
             cv::Point2d(len / 2.0 + std::cos(a) * len / 2, len / 2.0 + std::sin(a) * len / 2),
             cv::Scalar(1.0));
    k /= std::max(1.0, cv::sum(k)[0]);
    cv::filter2D(img, img, -1, k);
  } else {
    const double sigma = r.uniform(0.0, 1.1) * scale;
    if (sigma > 0.3) cv::GaussianBlur(img, img, cv::Size(0, 0), sigma);
  }
  // Sensor noise from OpenCV's generator, seeded from this frame's stream (deterministic);
  // uniform with the standard deviation of the drawn level (Gaussian fill costs 5x more).
  cv::Mat noise(h, w, CV_32FC3);
  cv::RNG noise_rng(r.next());
  const double amplitude = r.uniform(0.004, 0.02) * std::sqrt(3.0);
  noise_rng.fill(noise, cv::RNG::UNIFORM, -amplitude, amplitude);
  img += noise;
  cv::Mat out8;
  img.convertTo(out8, CV_8UC3, 255.0);
  cv::cvtColor(out8, out8, cv::COLOR_BGR2RGB);

  SynthFrame result;
  result.jpeg = encode_jpeg_rgb(out8.ptr<std::uint8_t>(), w, h, opt.jpeg_quality);
  cv::Mat mask = cv::Mat::zeros(h, w, CV_8U);
  json polyps = json::array();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    cv::Mat visible = layers[i].mask & ~occluder & ~corners;
    const int area = cv::countNonZero(visible);
    if (area < 16) continue;  // hidden or cut away: not visible in this frame
    const cv::Rect box = cv::boundingRect(visible);
    mask |= visible;
    const SynthPolyp& p = exam.polyps[static_cast<std::size_t>(show[i])];
    result.boxes.push_back({show[i], box.x, box.y, box.x + box.width, box.y + box.height, area});
    polyps.push_back({{"polyp", show[i]},
                      {"box", {box.x, box.y, box.x + box.width, box.y + box.height}},
                      {"area", area},
                      {"pathology", p.pathology},
                      {"morphology", p.morphology},
                      {"size_mm", p.size_mm}});
  }
  std::vector<std::uint8_t> png;
  cv::imencode(".png", mask, png, {cv::IMWRITE_PNG_COMPRESSION, 0});
  result.mask_png.assign(png.begin(), png.end());
  result.truth = {{"has_polyp", !polyps.empty()}, {"polyps", polyps}};
  return result;
}

}  // namespace endoked::data
