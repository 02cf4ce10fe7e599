// Tests of interp/'s plain-data core: statistics, the lift-segment finder, attention metrics, heatmap
// figures and neuron-set / intervention files. Expected values come from closed forms, published tables or
// hand computations written out in the comments, never from the code under test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/image_io.h"
#include "interp/attention_metrics.h"
#include "interp/closed_loop.h"
#include "interp/attention_study.h"
#include "interp/attention_views.h"
#include "interp/heatmap.h"
#include "interp/label_mask.h"
#include "interp/lift_segment.h"
#include "interp/neuron_set.h"
#include "interp/stats.h"

namespace vlascope {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("vlascope_test_interp_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs f and returns the Error's message ("" if it did not throw).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ======================================== statistics ====================================================

TEST(Stats, IncompleteBetaMatchesClosedForms) {
  for (double x : {0.0, 0.05, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    EXPECT_NEAR(incomplete_beta(1, 1, x), x, 1e-14);
    EXPECT_NEAR(incomplete_beta(2.5, 1, x), std::pow(x, 2.5), 1e-14);          // I_x(a,1) = x^a
    EXPECT_NEAR(incomplete_beta(1, 3.7, x), 1 - std::pow(1 - x, 3.7), 1e-14);  // I_x(1,b) = 1-(1-x)^b
    EXPECT_NEAR(incomplete_beta(3.2, 0.7, x), 1 - incomplete_beta(0.7, 3.2, 1 - x), 1e-14);
  }
  EXPECT_NEAR(incomplete_beta(7.3, 7.3, 0.5), 0.5, 1e-14);
  // Integer a, b: I_x(a, b) = Σ_{j=a}^{a+b-1} C(a+b-1, j) x^j (1-x)^{a+b-1-j}; I_0.4(2,3) = 0.3456+0.1536+0.0256.
  EXPECT_NEAR(incomplete_beta(2, 3, 0.4), 0.5248, 1e-14);
  for (double x : {0.1, 0.35, 0.6, 0.9}) {
    const int a = 4, b = 6, n = a + b - 1;
    double expected = 0, c = 1;  // C(n, j) built up from j = 0
    for (int j = 0; j <= n; ++j) {
      if (j >= a) expected += c * std::pow(x, j) * std::pow(1 - x, n - j);
      c = c * (n - j) / (j + 1);
    }
    EXPECT_NEAR(incomplete_beta(a, b, x), expected, 1e-13) << "x=" << x;
  }
  EXPECT_THROW(incomplete_beta(0, 1, 0.5), Error);
  EXPECT_THROW(incomplete_beta(1, 1, 1.5), Error);
}

TEST(Stats, StudentTCdfMatchesClosedFormsToE12) {
  for (double t : {-1e4, -35.0, -4.0, -2.0, -0.7, -1e-3, 0.0, 0.2, 1.0, 2.5, 6.0, 80.0, 3e5}) {
    const double cauchy = 0.5 + std::atan(t) / kPi;           // df = 1
    const double df2 = 0.5 + t / (2 * std::sqrt(2 + t * t));  // df = 2
    const double df3 = 0.5 + (t / std::sqrt(3) / (1 + t * t / 3) + std::atan(t / std::sqrt(3))) / kPi;
    const double q = 1 + t * t / 4;  // df = 4
    const double df4 = 0.5 + 0.375 * t / std::sqrt(q) * (1 - t * t / (12 * q));
    EXPECT_NEAR(student_t_cdf(t, 1), cauchy, 1e-12) << "t=" << t;
    EXPECT_NEAR(student_t_cdf(t, 2), df2, 1e-12) << "t=" << t;
    EXPECT_NEAR(student_t_cdf(t, 3), df3, 1e-12) << "t=" << t;
    EXPECT_NEAR(student_t_cdf(t, 4), df4, 1e-12) << "t=" << t;
    EXPECT_NEAR(student_t_two_sided_p(t, 2), std::min(1.0, 2 * std::min(df2, 1 - df2)), 1e-12);
  }
  // Large df approaches the normal distribution.
  EXPECT_NEAR(student_t_cdf(1.96, 1e7), normal_cdf(1.96), 1e-7);
  EXPECT_NEAR(normal_cdf(1.96), 0.9750021048517795, 1e-15);
  EXPECT_THROW(student_t_cdf(1, 0), Error);
}

TEST(Stats, StudentTQuantilesMatchTables) {
  // Two-sided 95% / 99% critical values as tabulated (e.g. NIST/SEMATECH e-Handbook table 1.3.6.7.2).
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.706204736174707, 1e-9);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.302652729749464, 1e-10);  // = 0.95/√(2·0.975·0.025)
  EXPECT_NEAR(student_t_quantile(0.975, 5), 2.570581835636314, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.228138851986274, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.95, 20), 1.724718242920787, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.995, 30), 2.749995653567, 1e-9);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.228138851986274, 1e-10);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-12);
  // Closed forms: df = 1 is tan(π(p − ½)) = −1/tan(πp) (the second form stays accurate near p = 0);
  // df = 2 is (2p − 1)/√(2p(1 − p)).
  for (double p : {1e-8, 0.001, 0.1, 0.4, 0.5, 0.63, 0.9, 0.999}) {
    const double cauchy = -1 / std::tan(kPi * p), df2 = (2 * p - 1) / std::sqrt(2 * p * (1 - p));
    EXPECT_NEAR(student_t_quantile(p, 1), cauchy, 1e-9 * std::max(1.0, std::fabs(cauchy))) << p;
    EXPECT_NEAR(student_t_quantile(p, 2), df2, 1e-9 * std::max(1.0, std::fabs(df2))) << p;
    EXPECT_NEAR(student_t_cdf(student_t_quantile(p, 7.5), 7.5), p, 1e-13);
  }
  EXPECT_THROW(student_t_quantile(1.0, 3), Error);
}

TEST(Stats, SummaryOfTextbookSample) {
  // {2,4,4,4,5,5,7,9}: mean 5, Σ(x−m)² = 32, sd = √(32/7); 95% CI = 5 ± t(0.975, 7)·sd/√8, t = 2.364624251592785.
  const Summary s = summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.n, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.sd, std::sqrt(32.0 / 7), 1e-14);
  EXPECT_NEAR(s.se, std::sqrt(32.0 / 7) / std::sqrt(8.0), 1e-14);
  EXPECT_NEAR(s.ci_hi - s.mean, 2.364624251592785 * s.se, 1e-10);
  EXPECT_NEAR(s.mean - s.ci_lo, 2.364624251592785 * s.se, 1e-10);
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.25), 1.75);  // type 7: 1 + 0.75·(2 − 1)
  const Summary one = summarize({3.5});
  EXPECT_EQ(one.sd, 0);
  EXPECT_EQ(one.ci_lo, 3.5);
  EXPECT_THROW(summarize({}), Error);
  EXPECT_THROW(summarize({1, NAN}), Error);
}

TEST(Stats, WelchTTestByHand) {
  // a = {1,3}, b = {5,7}: both variances 2, se = √(1 + 1) = √2, t = −4/√2, df = (1+1)²/(1/1 + 1/1) = 2.
  // With df = 2 the CDF is ½ + t/(2√(2 + t²)) = ½ + 2.828/(2√10), so p = 2(½ − 0.4472136) = 0.1055728.
  const TTestResult r = welch_t_test({1, 3}, {5, 7});
  EXPECT_DOUBLE_EQ(r.difference, -4);
  EXPECT_NEAR(r.t, -4 / std::sqrt(2.0), 1e-14);
  EXPECT_NEAR(r.df, 2, 1e-14);
  EXPECT_NEAR(r.p, 1 - 2 / std::sqrt(5.0), 1e-12);  // 2(1 − (½ + √8/(2√10))) = 1 − 2/√5
  EXPECT_NEAR(r.ci_hi, -4 + 4.302652729911275 * std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(r.ci_lo, -4 - 4.302652729911275 * std::sqrt(2.0), 1e-9);

  // Unequal variances and sizes: a = {1,2,3,4} (var 5/3), b = {2,4,…,12} (var 14).
  // se² = 5/12 + 14/6 = 2.75, t = −4.5/√2.75; df = 2.75² / ((5/12)²/3 + (14/6)²/5) = 6.59467097295115.
  // p from a Simpson integration of the t density (200 000 intervals): 0.03182444378086435.
  const TTestResult u = welch_t_test({1, 2, 3, 4}, {2, 4, 6, 8, 10, 12});
  EXPECT_NEAR(u.t, -2.7136021011998728, 1e-12);
  EXPECT_NEAR(u.df, 6.59467097295115, 1e-12);
  EXPECT_NEAR(u.p, 0.03182444378086435, 1e-10);
  EXPECT_THROW(welch_t_test({1}, {2, 3}), Error);
  EXPECT_THROW(welch_t_test({2, 2}, {3, 3}), Error);
}

TEST(Stats, MannWhitneyWithTiesByHand) {
  // a = {1.1, 2.2, 3.3, 4.4}, b = {3.3, 5.5, 6.6, 7.7, 8.8}. Ranks of a: 1, 2, 3.5, 5 → R = 11.5,
  // U_a = 11.5 − 4·5/2 = 1.5 (pairs a > b: 0 + 0 + ½ + 1). Tie correction: one pair tied, t³ − t = 6;
  // var = 4·5/12 · (10 − 6/(9·8)) = 16.527…; z = −(|1.5 − 10| − 0.5)/√var = −1.9678081480578906,
  // p = erfc(|z|/√2) = 0.049090116322607596 (R: wilcox.test(exact = FALSE) gives W = 1.5, p = 0.04909).
  const MannWhitneyResult r = mann_whitney_u({1.1, 2.2, 3.3, 4.4}, {3.3, 5.5, 6.6, 7.7, 8.8});
  EXPECT_DOUBLE_EQ(r.u_a, 1.5);
  EXPECT_DOUBLE_EQ(r.u_b, 18.5);
  EXPECT_NEAR(r.z, -1.9678081480578906, 1e-12);
  EXPECT_NEAR(r.p, 0.049090116322607596, 1e-12);
  EXPECT_NEAR(r.rank_biserial, -0.85, 1e-14);
  // Swapping the samples mirrors the statistic.
  const MannWhitneyResult s = mann_whitney_u({3.3, 5.5, 6.6, 7.7, 8.8}, {1.1, 2.2, 3.3, 4.4});
  EXPECT_DOUBLE_EQ(s.u_a, 18.5);
  EXPECT_NEAR(s.z, -r.z, 1e-14);
  EXPECT_NEAR(s.p, r.p, 1e-14);
  // All values tied: no evidence.
  const MannWhitneyResult tied = mann_whitney_u({2, 2}, {2, 2, 2});
  EXPECT_EQ(tied.p, 1);
}

TEST(Stats, EffectSizesByHand) {
  // a = {1,3}, b = {5,7}: pooled sd = √((2+2)/2) = √2, d = −4/√2. df = 2: J = Γ(1)/(1·Γ(½)) = 1/√π.
  EXPECT_NEAR(cohens_d({1, 3}, {5, 7}), -4 / std::sqrt(2.0), 1e-14);
  EXPECT_NEAR(hedges_g({1, 3}, {5, 7}), -4 / std::sqrt(2.0) / std::sqrt(kPi), 1e-13);
  // df = 38: J = Γ(19)/(√19·Γ(18.5)), and Γ(18.5)/Γ(19) = √π·Π_{k=0}^{17} (k + ½)/(k + 1); Hedges' (1981)
  // approximation 1 − 3/(4·df − 1) is within 3e-5 of it.
  std::vector<double> a, b;
  for (int i = 0; i < 20; ++i) {
    a.push_back(std::sin(i * 1.3) + 1);
    b.push_back(std::cos(i * 0.7));
  }
  const double d = cohens_d(a, b), g = hedges_g(a, b);
  double ratio = std::sqrt(kPi);
  for (int k = 0; k <= 17; ++k) ratio *= (k + 0.5) / (k + 1);
  EXPECT_NEAR(g / d, 1 / (std::sqrt(19.0) * ratio), 1e-13);
  EXPECT_NEAR(g / d, 1 - 3.0 / (4 * 38 - 1), 3e-5);
  EXPECT_THROW(cohens_d({1, 1}, {1, 1}), Error);
}

TEST(Stats, BootstrapIsSeededAndMatchesTheNormalInterval) {
  std::vector<double> a, b;
  for (int i = 0; i < 60; ++i) {
    a.push_back(1.0 + (i % 10) * 0.1 + (i % 7) * 0.05);
    b.push_back((i % 10) * 0.1 + (i % 7) * 0.05);  // a shifted by exactly 1
  }
  const BootstrapResult r1 = bootstrap_mean_difference(a, b, 4000, 0.95, 7);
  const BootstrapResult r2 = bootstrap_mean_difference(a, b, 4000, 0.95, 7);
  const BootstrapResult r3 = bootstrap_mean_difference(a, b, 4000, 0.95, 8);
  EXPECT_NEAR(r1.estimate, 1, 1e-12);
  EXPECT_EQ(r1.ci_lo, r2.ci_lo);  // same seed, same interval
  EXPECT_EQ(r1.ci_hi, r2.ci_hi);
  EXPECT_NE(r1.ci_lo, r3.ci_lo);
  EXPECT_LT(r1.ci_lo, 1);
  EXPECT_GT(r1.ci_hi, 1);
  // The percentile interval of a mean difference is close to ±1.96·se for samples this size.
  const TTestResult w = welch_t_test(a, b);
  const double welch_width = w.ci_hi - w.ci_lo, boot_width = r1.ci_hi - r1.ci_lo;
  EXPECT_GT(boot_width / welch_width, 0.85);
  EXPECT_LT(boot_width / welch_width, 1.1);
}

TEST(Stats, PermutationTestExactAndSampled) {
  // a = {1,2}, b = {3,4}: the 6 relabellings give differences −2, −1, 0, 0, 1, 2; |d| ≥ 2 in 2 → p = 1/3.
  const PermutationResult exact = permutation_test({1, 2}, {3, 4});
  EXPECT_TRUE(exact.exact);
  EXPECT_EQ(exact.permutations, 6);
  EXPECT_DOUBLE_EQ(exact.difference, -2);
  EXPECT_NEAR(exact.p, 1.0 / 3, 1e-15);
  // 8 + 8 values: C(16, 8) = 12870 relabellings. Exact enumeration vs 6000 random draws.
  std::vector<double> a{2.1, 3.4, 1.9, 4.2, 3.3, 2.8, 3.9, 2.5}, b{1.2, 2.0, 1.7, 2.9, 1.1, 2.4, 1.8, 2.2};
  const PermutationResult full = permutation_test(a, b, 20000);
  EXPECT_TRUE(full.exact);
  EXPECT_EQ(full.permutations, 12870);
  const PermutationResult sampled = permutation_test(a, b, 6000, 3);
  EXPECT_FALSE(sampled.exact);
  EXPECT_NEAR(sampled.p, full.p, 0.01);
  EXPECT_GT(full.p, 0);
  EXPECT_LT(full.p, 0.05);
}

TEST(Stats, ProportionsByHand) {
  // 7/10 at 95%: centre (0.7 + z²/20)/(1 + z²/10) = 0.64450, half-width z·√(0.021 + z²/400)/(1 + z²/10) = 0.24771
  // with z = 1.959964 → [0.39677, 0.89220] (the commonly quoted Wilson interval for 7/10 is [0.397, 0.892]).
  const ProportionInterval w = wilson_interval(7, 10);
  EXPECT_DOUBLE_EQ(w.estimate, 0.7);
  EXPECT_NEAR(w.lo, 0.39677, 1e-4);
  EXPECT_NEAR(w.hi, 0.89220, 1e-4);
  // 0/10: the interval starts at 0 and reaches z²/(n + z²) = 3.8415/13.8415 = 0.27753.
  const ProportionInterval none = wilson_interval(0, 10);
  EXPECT_EQ(none.lo, 0);
  EXPECT_NEAR(none.hi, 0.27753, 1e-4);
  EXPECT_THROW(wilson_interval(11, 10), Error);
  // Fisher's tea-tasting table [[3, 1], [1, 3]]: P(x) = C(4,x)C(4,4−x)/C(8,4) = 1, 16, 36, 16, 1 (/70);
  // tables no likelier than x = 3 are x = 0, 1, 3, 4 → p = 34/70.
  EXPECT_NEAR(fisher_exact_p(3, 1, 1, 3), 34.0 / 70, 1e-12);
  EXPECT_NEAR(fisher_exact_p(4, 0, 0, 4), 2.0 / 70, 1e-12);
  EXPECT_NEAR(fisher_exact_p(2, 2, 2, 2), 1, 1e-12);
  // 10/10 vs 3/10 succeeded: P(x = 10 | margins 10, 10, 13) = C(10,10)C(10,3)/C(20,13) = 120/77520, and the
  // mirror table x = 3 is as unlikely: p = 240/77520.
  EXPECT_NEAR(fisher_exact_p(10, 0, 3, 7), 240.0 / 77520, 1e-12);
  EXPECT_THROW(fisher_exact_p(-1, 0, 0, 0), Error);
}

TEST(Stats, HolmAdjustmentByHand) {
  // Sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → monotone 0.02, 0.03, 0.06, 0.06.
  const std::vector<double> adjusted = holm_adjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adjusted.size(), 4u);
  EXPECT_NEAR(adjusted[0], 0.03, 1e-15);
  EXPECT_NEAR(adjusted[1], 0.06, 1e-15);
  EXPECT_NEAR(adjusted[2], 0.06, 1e-15);
  EXPECT_NEAR(adjusted[3], 0.02, 1e-15);
  const std::vector<double> capped = holm_adjust({0.5, 0.6});
  EXPECT_EQ(capped[0], 1);
  EXPECT_EQ(capped[1], 1);
  EXPECT_TRUE(holm_adjust({}).empty());
  EXPECT_THROW(holm_adjust({1.2}), Error);
}

TEST(Stats, LinearFitByHand) {
  // x = 1…5, y = {2.1, 3.9, 6.2, 7.8, 10.1}: Sxx = 10, Sxy = 19.9 → slope 1.99, intercept 0.05;
  // residual SS = 0.107, se = √(0.107/3/10) = 0.0597215762…; 95% CI uses t(0.975, 3) = 3.182446305284263;
  // p from the df = 3 closed-form CDF at t = 33.32129…: 5.9415391117534355e-05.
  const LinearFit f = linear_fit({1, 2, 3, 4, 5}, {2.1, 3.9, 6.2, 7.8, 10.1});
  EXPECT_EQ(f.n, 5);
  EXPECT_NEAR(f.slope, 1.99, 1e-13);
  EXPECT_NEAR(f.intercept, 0.05, 1e-13);
  EXPECT_NEAR(f.slope_se, 0.05972157622389639, 1e-13);
  EXPECT_NEAR(f.slope_ci_lo, 1.99 - 3.182446305284263 * 0.05972157622389639, 1e-10);
  EXPECT_NEAR(f.slope_ci_hi, 1.99 + 3.182446305284263 * 0.05972157622389639, 1e-10);
  EXPECT_NEAR(f.p / 5.9415391117534355e-05, 1, 1e-7);
  EXPECT_NEAR(f.r2, 0.9973053289009771, 1e-12);
  EXPECT_THROW(linear_fit({1, 1, 1}, {1, 2, 3}), Error);
  EXPECT_THROW(linear_fit({1, 2}, {1, 2}), Error);
  EXPECT_THROW(linear_fit({1, 2, 3}, {1, 2}), Error);
}

// ======================================== lift segment ==================================================

// A synthetic pick-up at 30 Hz: approach with the gripper open (80), close to `closed` over 0.3 s starting
// at close_t, wait, lift by `rise` metres over `lift_s` seconds (cosine profile) starting at lift_t, hold.
struct Synthetic {
  double close_t = 2.0, closed = 25, lift_t = 3.0, lift_s = 1.5, rise = 0.10, duration = 6.0;
  double z0 = 0.03, noise_m = 0.0015, noise_gripper = 1.5, drift = 0.05;  // drift: sideways m/s
  bool grasp = true;
  uint64_t seed = 1;
};

double cosine_step(double s) { return s <= 0 ? 0 : s >= 1 ? 1 : 0.5 * (1 - std::cos(kPi * s)); }

EeTrajectory make_trajectory(const Synthetic& c) {
  EeTrajectory t;
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<double> position_noise(0, c.noise_m), gripper_noise(0, c.noise_gripper);
  const int last = static_cast<int>(std::lround(c.duration * 30));
  for (int i = 0; i <= last; ++i) {
    const double time = i / 30.0;
    double z = 0.15 - (0.15 - c.z0) * cosine_step(time / 1.8);  // approach from 15 cm
    z += c.rise * cosine_step((time - c.lift_t) / c.lift_s);
    const double g = c.grasp ? 80 - (80 - c.closed) * cosine_step((time - c.close_t) / 0.3) : 80;
    t.time.push_back(time);
    t.ee.push_back({0.2 + position_noise(rng), c.drift * time + position_noise(rng), z + position_noise(rng)});
    t.gripper.push_back(g + gripper_noise(rng));
  }
  return t;
}

TEST(LiftSegment, FindsGraspLiftAndPlateauUnderNoise) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Synthetic c;
    c.seed = seed;
    const LiftSegment s = find_lift_segment(make_trajectory(c));
    ASSERT_EQ(s.status, LiftStatus::kLifted) << "seed " << seed << ": " << s.describe();
    ASSERT_EQ(s.attempts.size(), 1u);
    // 90% of the cosine closing is done at s = acos(1 − 1.8)/π ≈ 0.795 of 0.3 s → t ≈ 2.24 s.
    EXPECT_NEAR(s.grasp_time, 2.0 + 0.3 * std::acos(-0.8) / kPi, 0.07) << "seed " << seed;
    // The EE leaves the 4 mm band at s ≈ 0.13 of the lift (0.2 s after it starts).
    EXPECT_GE(s.lift_start_time, c.lift_t - 0.05) << "seed " << seed;
    EXPECT_LE(s.lift_start_time, c.lift_t + 0.35) << "seed " << seed;
    // The top is the full rise; the lift ends at 95% of it: s = acos(1 − 2·0.95)/π = 0.856 of the motion.
    // (Noise lifts the smoothed top by a millimetre or two, which moves the end up to a few samples later.)
    EXPECT_NEAR(s.lift_end_time, c.lift_t + c.lift_s * std::acos(-0.9) / kPi, 0.15) << "seed " << seed;
    EXPECT_NEAR(s.grasp_height, c.z0, 0.004);
    EXPECT_NEAR(s.top_rise, c.rise, 0.004);
    EXPECT_GT(s.max_rise, 0.93 * c.rise);
    EXPECT_LT(s.max_rise, c.rise + 0.005);
    EXPECT_NEAR(s.max_height, s.grasp_height + s.max_rise, 1e-12);
    // Over a symmetric segment of a cosine lift the mean height is near the middle of the rise.
    EXPECT_NEAR(s.mean_rise, c.rise / 2, 0.012);
    EXPECT_GE(s.p95_height, s.mean_height);
    EXPECT_LE(s.p95_height, s.max_height);
    EXPECT_NEAR(s.duration_s, s.lift_end_time - s.lift_start_time, 1e-12);
    EXPECT_EQ(s.steps, s.lift_end_index - s.lift_start_index + 1);
    // Mean speed = path / duration; per-step displacement is the same at 30 Hz.
    EXPECT_NEAR(s.mean_step_displacement * 30, s.mean_speed, 1e-9);
    EXPECT_GT(s.mean_vertical_speed, 0.7 * c.rise / c.lift_s);
    // Speed is robust to the noise: the same motion without noise gives nearly the same number.
    Synthetic clean = c;
    clean.noise_m = clean.noise_gripper = 0;
    const LiftSegment q = find_lift_segment(make_trajectory(clean));
    EXPECT_NEAR(s.mean_speed / q.mean_speed, 1, 0.1) << "seed " << seed;
    EXPECT_NEAR(s.mean_height, q.mean_height, 0.005) << "seed " << seed;  // 300 seeds: worst 3.9 mm
    EXPECT_EQ(s.episode_steps, 181);
    EXPECT_NEAR(s.episode_duration_s, 6.0, 1e-9);
  }
}

// A first-order plant: each call, the rise moves a third of the way to gain × α (what steering asks for).
double plant_step(double rise, double alpha) { return rise + (0.01 * alpha - rise) / 3; }

TEST(ClosedLoop, ControllerStepResponseClippingAndAntiWindup) {
  // P alone: e = (0.1 − 0.05) / 0.1 = 0.5 → α = 2 · 0.5.
  EXPECT_DOUBLE_EQ(AlphaController({2, 0, 0, 0, 20}, 0.1).update(0.05, 0.3), 1.0);
  // Step response on the plant: P alone settles short of the target, at r = 0.01 · 4 · (1 − r / 0.1), i.e.
  // r = 0.04 / 1.4; PI removes that error.
  for (const bool integral : {false, true}) {
    AlphaController c({4, integral ? 0.5 : 0.0, 0, 0, 20}, 0.1);
    double rise = 0;
    for (int call = 0; call < 2000; ++call) rise = plant_step(rise, c.update(rise, 1.0 / 3));
    if (integral)
      EXPECT_NEAR(rise, 0.1, 1e-4);
    else
      EXPECT_NEAR(rise, 0.04 / 1.4, 1e-6);
  }
  // Derivative of the error between calls; none on the first.
  AlphaController d({0, 0, 1, -100, 100}, 0.1);
  EXPECT_EQ(d.update(0.05, 0.5), 0);   // e 0.5
  EXPECT_NEAR(d.update(0.07, 0.5), -0.4, 1e-12);  // e 0.3: (0.3 − 0.5) / 0.5 s
  // Clipping both ways.
  EXPECT_EQ(AlphaController({100, 0, 0, 0, 20}, 0.1).update(0, 0.1), 20);
  EXPECT_EQ(AlphaController({4, 0, 0, 0, 20}, 0.1).update(0.3, 0.1), 0);
  // Anti-windup: held at the clip for ten seconds, the integral stops where the output reached the clip…
  AlphaController w({0, 1, 0, 0, 1}, 0.1);
  for (int call = 0; call < 10; ++call) EXPECT_LE(w.update(0, 1), 1);
  EXPECT_DOUBLE_EQ(w.integral(), 1);
  // …so when the concept overshoots, α leaves the clip at once (a wound-up integral of 10 would hold it at 1).
  EXPECT_LT(w.update(0.2, 1), 1);
  EXPECT_THROW(AlphaController({4, 0, 0, 0, 20}, 0), Error);
  EXPECT_THROW(AlphaController({4, 0, 0, 5, 1}, 0.1), Error);
}

TEST(ClosedLoop, ConceptsAreMeasuredFromTheTrajectoryAndTheGripper) {
  Synthetic c;
  c.noise_m = c.noise_gripper = 0;
  const EeTrajectory t = make_trajectory(c);
  std::vector<RolloutStep> steps;
  for (size_t i = 0; i < t.time.size(); ++i) {
    RolloutStep s;
    s.time = t.time[i];
    s.end_effector.position = t.ee[i];
    s.state[kGripper] = static_cast<float>(t.gripper[i]);
    steps.push_back(s);
  }
  auto measure = [&](Concept concept, size_t i) {
    return measure_concept(concept, std::vector<RolloutStep>(steps.begin(), steps.begin() + static_cast<long>(i)),
                           steps[i]);
  };
  EXPECT_FALSE(measure(Concept::kLift, 0).has_value());   // one sample
  EXPECT_FALSE(measure(Concept::kLift, 45).has_value());  // 1.5 s: no grasp yet
  EXPECT_FALSE(measure(Concept::kSpeed, 0).has_value());
  // After the lift (5.5 s): the rise above the grasp height, which the approach reached at z0.
  ASSERT_TRUE(measure(Concept::kLift, 165).has_value());
  EXPECT_NEAR(*measure(Concept::kLift, 165), c.rise, 1e-3);
  // Speed over the last third of a second (10 samples), by hand at 1 s, on the approach.
  const size_t i = 30, j = 20;
  const double dx = t.ee[i][0] - t.ee[j][0], dy = t.ee[i][1] - t.ee[j][1], dz = t.ee[i][2] - t.ee[j][2];
  EXPECT_NEAR(*measure(Concept::kSpeed, i), std::sqrt(dx * dx + dy * dy + dz * dz) / (t.time[i] - t.time[j]), 1e-12);
  // Concept error: mean |rise − target| from the lift start; an episode without a lift errs by the whole target.
  RolloutResult r;
  r.steps = steps;
  const LiftSegment lift = find_lift_segment(t);
  ASSERT_EQ(lift.status, LiftStatus::kLifted);
  double by_hand = 0;
  for (size_t k = static_cast<size_t>(lift.lift_start_index); k < t.time.size(); ++k)
    by_hand += std::abs(t.ee[k][2] - lift.grasp_height - 0.05);
  by_hand /= static_cast<double>(t.time.size() - static_cast<size_t>(lift.lift_start_index));
  EXPECT_NEAR(concept_error(r, lift, {Concept::kLift, 0.05}), by_hand, 1e-12);
  EXPECT_LT(concept_error(r, lift, {Concept::kLift, c.rise}), concept_error(r, lift, {Concept::kLift, 0.05}));
  Synthetic no_grasp = c;
  no_grasp.grasp = false;
  RolloutResult idle;
  for (const RolloutStep& s : steps) idle.steps.push_back(s), idle.steps.back().state[kGripper] = 80;
  EXPECT_EQ(concept_error(idle, find_lift_segment(make_trajectory(no_grasp)), {Concept::kLift, 0.05}), 0.05);
  // Targets: lift:M or speed:M/S, positive.
  EXPECT_EQ(parse_concept_target("speed:0.2", "--target").concept, Concept::kSpeed);
  EXPECT_EQ(parse_concept_target("lift:0.12", "--target").value, 0.12);
  for (const char* bad : {"lift", "height:0.1", "lift:-1", "lift:x", "lift:"})
    EXPECT_THROW(parse_concept_target(bad, "--target"), Error) << bad;
}

TEST(LiftSegment, SeparatesSlowFromFastAndHighFromLow) {
  Synthetic fast, slow, high, low;
  fast.drift = slow.drift = 0;  // a purely vertical lift: speed scales exactly with 1/duration
  fast.lift_s = 0.8;
  slow.lift_s = 2.4;
  slow.duration = 7;
  high.rise = 0.15;
  low.rise = 0.05;
  const LiftSegment f = find_lift_segment(make_trajectory(fast)), s = find_lift_segment(make_trajectory(slow));
  const LiftSegment h = find_lift_segment(make_trajectory(high)), l = find_lift_segment(make_trajectory(low));
  for (const LiftSegment* x : {&f, &s, &h, &l}) ASSERT_EQ(x->status, LiftStatus::kLifted) << x->describe();
  // Same rise, three times the duration: the segment covers the same part of the motion, a third of the speed.
  EXPECT_NEAR(f.mean_speed / s.mean_speed, 3, 0.3);
  EXPECT_NEAR(s.duration_s / f.duration_s, 3, 0.3);
  // Same speed profile, three times the rise.
  EXPECT_NEAR(h.max_rise - l.max_rise, 0.10, 0.01);
  EXPECT_GT(h.mean_height - l.mean_height, 0.03);
}

TEST(LiftSegment, ReportsNoGraspAndGraspWithoutLift) {
  Synthetic open;
  open.grasp = false;  // the arm moves up and down but the gripper never closes
  const LiftSegment a = find_lift_segment(make_trajectory(open));
  EXPECT_EQ(a.status, LiftStatus::kNoGrasp);
  EXPECT_TRUE(a.attempts.empty());
  EXPECT_EQ(a.grasp_index, -1);
  EXPECT_EQ(a.duration_s, 0);

  Synthetic stuck;
  stuck.rise = 0.005;  // closes, then barely moves
  const LiftSegment b = find_lift_segment(make_trajectory(stuck));
  EXPECT_EQ(b.status, LiftStatus::kGraspNoLift);
  EXPECT_GE(b.grasp_index, 0);
  EXPECT_EQ(b.lift_start_index, -1);

  Synthetic empty;
  empty.closed = 0.5;  // jaws meet: nothing in the gripper
  LiftOptions judge;
  judge.empty_closed_below = 3;
  const LiftSegment c = find_lift_segment(make_trajectory(empty), judge);
  EXPECT_EQ(c.status, LiftStatus::kNoGrasp);
  ASSERT_EQ(c.attempts.size(), 1u);
  EXPECT_TRUE(c.attempts[0].empty);
  EXPECT_EQ(find_lift_segment(make_trajectory(empty)).status, LiftStatus::kLifted);  // not judged by default
}

TEST(LiftSegment, RegraspPicksTheClosingThatLifts) {
  // First closing at 1.0 s holds 1 s without lifting, reopens; the second closing at 2.5 s lifts at 3.2 s.
  EeTrajectory t;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n(0, 0.001);
  for (int i = 0; i <= 180; ++i) {
    const double time = i / 30.0;
    double g = 80 - 55 * cosine_step((time - 1.0) / 0.3) + 55 * cosine_step((time - 2.0) / 0.2) -
               55 * cosine_step((time - 2.5) / 0.3);
    const double z = 0.03 + 0.08 * cosine_step((time - 3.2) / 1.2);
    t.time.push_back(time);
    t.ee.push_back({0.2, 0.0, z + n(rng)});
    t.gripper.push_back(g + 1000 * n(rng));  // ±1 unit
  }
  const LiftSegment s = find_lift_segment(t);
  ASSERT_EQ(s.status, LiftStatus::kLifted) << s.describe();
  ASSERT_EQ(s.attempts.size(), 2u);
  EXPECT_TRUE(s.attempts[0].held);
  EXPECT_FALSE(s.attempts[0].lifted);
  EXPECT_GE(s.attempts[0].reopen_index, 0);
  EXPECT_EQ(s.chosen_attempt, 1);
  EXPECT_NEAR(s.grasp_time, 2.5 + 0.3 * std::acos(-0.8) / kPi, 0.07);
  EXPECT_GT(s.lift_start_time, 3.1);

  // A closing too short to be a grasp (0.2 s) is recorded but not held.
  EeTrajectory blip = t;
  for (size_t i = 0; i < blip.time.size(); ++i) {
    const double time = blip.time[i];
    blip.gripper[i] = 80 - 55 * cosine_step((time - 1.0) / 0.1) + 55 * cosine_step((time - 1.3) / 0.1);
  }
  const LiftSegment b = find_lift_segment(blip);
  EXPECT_EQ(b.status, LiftStatus::kNoGrasp);
  ASSERT_EQ(b.attempts.size(), 1u);
  EXPECT_FALSE(b.attempts[0].held);
}

TEST(LiftSegment, InitiallyClosedGripperIsNotAGrasp) {
  // Starts closed (rest pose), opens during the approach, then closes on the object.
  Synthetic c;
  EeTrajectory t = make_trajectory(c);
  for (size_t i = 0; i < t.time.size(); ++i)
    if (t.time[i] < 1.0) t.gripper[i] = 2 + 78 * cosine_step(t.time[i] / 0.8);
  const LiftSegment s = find_lift_segment(t);
  ASSERT_EQ(s.status, LiftStatus::kLifted);
  EXPECT_EQ(s.attempts.size(), 1u);
  EXPECT_GT(s.grasp_time, 2.0);
}

TEST(LiftSegment, RejectsBadInput) {
  EeTrajectory t = make_trajectory(Synthetic{});
  EeTrajectory shorter = t;
  shorter.gripper.pop_back();
  EXPECT_NE(error_of([&] { find_lift_segment(shorter); }).find("gripper"), std::string::npos);
  EeTrajectory backwards = t;
  backwards.time[10] = backwards.time[9];
  EXPECT_NE(error_of([&] { find_lift_segment(backwards); }).find("sample 10"), std::string::npos);
  EeTrajectory nan = t;
  nan.ee[3][2] = NAN;
  EXPECT_THROW(find_lift_segment(nan), Error);
  EXPECT_THROW(find_lift_segment(EeTrajectory{}), Error);
  LiftOptions bad;
  bad.start_band = 0.05;  // wider than the lift threshold
  EXPECT_THROW(find_lift_segment(t, bad), Error);
}

TEST(LiftSegment, MovingMedianRemovesSpikes) {
  std::vector<double> time, values;
  for (int i = 0; i < 20; ++i) {
    time.push_back(i / 30.0);
    values.push_back(i == 7 ? 100 : 1);
  }
  const std::vector<double> m = moving_median(time, values, 0.1);
  for (double v : m) EXPECT_EQ(v, 1);
  // A 0.1 s window at 30 Hz holds the sample and one neighbour each side (two at the ends).
  const std::vector<double> a = moving_average(time, values, 0.1);
  EXPECT_NEAR(a[7], 102.0 / 3, 1e-12);
  EXPECT_NEAR(a[6], 102.0 / 3, 1e-12);
  EXPECT_NEAR(a[5], 1, 1e-12);
  EXPECT_NEAR(a[0], 1, 1e-12);
}

// ======================================== attention metrics =============================================

TEST(AttentionGeometry, ResizeWithPadMatchesLeRobot) {
  // smolvla.md §4.1: 480×640 (H×W) becomes 384×512 with 128 pad rows on top.
  const PadGeometry landscape = resize_with_pad_geometry(640, 480);
  EXPECT_EQ(landscape.resized_width, 512);
  EXPECT_EQ(landscape.resized_height, 384);
  EXPECT_EQ(landscape.pad_left, 0);
  EXPECT_EQ(landscape.pad_top, 128);
  const PadGeometry portrait = resize_with_pad_geometry(480, 640);
  EXPECT_EQ(portrait.resized_width, 384);
  EXPECT_EQ(portrait.pad_left, 128);
  EXPECT_EQ(portrait.pad_top, 0);
  const PadGeometry square = resize_with_pad_geometry(256, 256);  // upsampled 2×, no pad
  EXPECT_EQ(square.resized_width, 512);
  EXPECT_EQ(square.pad_top, 0);
  const PadGeometry wide = resize_with_pad_geometry(640, 360);  // 16:9 → 512×288, 224 rows of pad
  EXPECT_EQ(wide.resized_height, 288);
  EXPECT_EQ(wide.pad_top, 224);
  EXPECT_DOUBLE_EQ(landscape.input_y(0), 128);
  EXPECT_DOUBLE_EQ(landscape.frame_x(landscape.input_x(123.5)), 123.5);
  EXPECT_THROW(resize_with_pad_geometry(0, 10), Error);
}

TEST(AttentionGeometry, GridMaskCoversTheRightCells) {
  const PadGeometry g = resize_with_pad_geometry(640, 480);  // scale 0.8, 128 pad rows = 2 cells of 64
  LabelImage labels(640, 480, 0);
  for (int y = 0; y < 80; ++y)
    for (int x = 0; x < 80; ++x) labels.at(x, y) = 5;  // → input [0,64)×[128,192) = cell (2, 0)
  for (int y = 0; y < 80; ++y)
    for (int x = 80; x < 120; ++x) labels.at(x, y) = 7;  // → input [64,96)×[128,192): half of cell (2, 1)
  const GridMask m = grid_mask(labels, {5}, g, 8, 8);
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) {
      const size_t i = static_cast<size_t>(r) * 8 + c;
      EXPECT_FLOAT_EQ(m.inside[i], r < 2 ? 0.0f : 1.0f) << r << "," << c;
      EXPECT_NEAR(m.coverage[i], r == 2 && c == 0 ? 1.0 : 0.0, 1e-6) << r << "," << c;
    }
  const GridMask both = grid_mask(labels, {5, 7}, g, 8, 8);
  EXPECT_NEAR(both.coverage[2 * 8 + 0], 1.0, 1e-6);
  EXPECT_NEAR(both.coverage[2 * 8 + 1], 0.5, 1e-6);

  // Pad not aligned with cells: 640×360 has 224 pad rows = 3.5 cells, so row 3 is half image.
  const PadGeometry wide = resize_with_pad_geometry(640, 360);
  const GridMask all = grid_mask(LabelImage(640, 360, 1), {1}, wide, 8, 8);
  for (int c = 0; c < 8; ++c) {
    EXPECT_NEAR(all.inside[3 * 8 + c], 0.5, 1e-6);
    EXPECT_NEAR(all.coverage[3 * 8 + c], 0.5, 1e-6);
    EXPECT_NEAR(all.inside[2 * 8 + c], 0.0, 1e-6);
    EXPECT_NEAR(all.inside[4 * 8 + c], 1.0, 1e-6);
  }

  // Area is conserved for any blob: Σ coverage · cell area = mask pixels · scale².
  LabelImage blob(640, 480, 0);
  int pixels = 0;
  for (int y = 0; y < 480; ++y)
    for (int x = 0; x < 640; ++x)
      if ((x - 301) * (x - 301) + (y - 211) * (y - 211) < 73 * 73) {
        blob.at(x, y) = 3;
        ++pixels;
      }
  const GridMask bm = grid_mask(blob, {3}, g, 8, 8);
  double area = 0;
  for (float v : bm.coverage) area += v * 64.0 * 64.0;
  EXPECT_NEAR(area, pixels * 0.64, 1e-3 * pixels);

  EXPECT_THROW(grid_mask(LabelImage(320, 240), {1}, g, 8, 8), Error);  // not the geometry's frame size
  EXPECT_THROW(grid_mask(labels, {}, g, 8, 8), Error);
}

TEST(AttentionMetrics, EntropyAndHoyerOnKnownMaps) {
  const std::vector<float> uniform(64, 1.0f / 64), one_hot = [] {
    std::vector<float> v(64, 0);
    v[10] = 1;
    return v;
  }();
  EXPECT_NEAR(entropy(uniform), std::log(64.0), 1e-6);
  EXPECT_NEAR(normalized_entropy(uniform), 1, 1e-6);
  EXPECT_NEAR(entropy(one_hot), 0, 1e-12);
  EXPECT_NEAR(entropy({2, 2, 0, 0}), std::log(2.0), 1e-7);  // normalised first
  EXPECT_NEAR(hoyer_sparsity(uniform), 0, 1e-6);
  EXPECT_NEAR(hoyer_sparsity(one_hot), 1, 1e-12);
  // (½, ½, 0, 0): (√4 − 1/√½) / (√4 − 1) = 2 − √2.
  EXPECT_NEAR(hoyer_sparsity({0.5f, 0.5f, 0, 0}), 2 - std::sqrt(2.0), 1e-6);
  EXPECT_THROW(entropy({0, 0}), Error);
  EXPECT_THROW(entropy({0.5f, -0.1f}), Error);
  EXPECT_THROW(hoyer_sparsity({}), Error);
}

TEST(AttentionMetrics, MaskMassPointingAndIou) {
  GridMap map(8, 8, 0.4f / 63);
  map.at(2, 0) = 0.6f;
  GridMask mask;
  mask.rows = mask.cols = 8;
  mask.coverage.assign(64, 0);
  mask.inside.assign(64, 1);
  mask.coverage[2 * 8 + 0] = 1;
  const MaskMass m = mask_mass(map, mask);
  EXPECT_NEAR(m.mass, 0.6, 1e-6);
  EXPECT_NEAR(m.chance, 1.0 / 64, 1e-9);
  EXPECT_NEAR(m.ratio, 0.6 * 64, 1e-4);
  // Partial coverage weighs the cell's attention.
  mask.coverage[2 * 8 + 1] = 0.5f;
  EXPECT_NEAR(mask_mass(map, mask).mass, 0.6 + 0.5 * 0.4 / 63, 1e-6);

  // Pointing: argmax at (3, 3), mask at (3, 5).
  GridMap peak(8, 8, 0.01f);
  peak.at(3, 3) = 0.5f;
  GridMask target;
  target.rows = target.cols = 8;
  target.coverage.assign(64, 0);
  target.inside.assign(64, 1);
  target.coverage[3 * 8 + 5] = 0.3f;
  Pointing p = pointing_game(peak, target, 0);
  EXPECT_FALSE(p.hit);
  EXPECT_EQ(p.row, 3);
  EXPECT_EQ(p.col, 3);
  EXPECT_EQ(p.ties, 0);
  EXPECT_FALSE(pointing_game(peak, target, 1).hit);
  EXPECT_TRUE(pointing_game(peak, target, 2).hit);
  EXPECT_FALSE(pointing_game(peak, target, 2, 0.5).hit);  // 0.3 coverage is not enough
  EXPECT_EQ(pointing_game(GridMap(8, 8, 1.0f), target).ties, 63);

  // Top 4 of 64 cells: (0,0) (0,1) (1,0) (1,1); the mask holds those 4 and 4 more → IoU 4/8.
  GridMap hot(8, 8, 0.0f);
  for (int i = 0; i < 64; ++i) hot.values[static_cast<size_t>(i)] = 0.001f * i;
  hot.at(0, 0) = hot.at(0, 1) = hot.at(1, 0) = hot.at(1, 1) = 1;
  GridMask eight;
  eight.rows = eight.cols = 8;
  eight.coverage.assign(64, 0);
  eight.inside.assign(64, 1);
  for (int i : {0, 1, 8, 9, 20, 21, 22, 23}) eight.coverage[static_cast<size_t>(i)] = 1;
  EXPECT_NEAR(top_fraction_iou(hot, eight, 4.0 / 64), 0.5, 1e-12);
  EXPECT_NEAR(top_fraction_iou(hot, hot, 0.1), 1, 1e-12);
  GridMap shifted(8, 8, 0.0f);
  shifted.at(0, 0) = shifted.at(0, 1) = shifted.at(7, 6) = shifted.at(7, 7) = 1;
  EXPECT_NEAR(top_fraction_iou(hot, shifted, 4.0 / 64), 2.0 / 6, 1e-12);
  const std::vector<uint8_t> top = top_cells(hot, 0.1);
  EXPECT_EQ(std::count(top.begin(), top.end(), 1), 7);  // ceil(6.4)

  EXPECT_THROW(mask_mass(GridMap(4, 4, 1.0f), mask), Error);  // grid mismatch
  EXPECT_THROW(top_cells(hot, 0), Error);
}

TEST(AttentionMetrics, HeadFusionAndQueryRows) {
  AttentionPattern a(2, 2, 3);
  // head 0: rows (0.2, 0.3, 0.5), (1, 0, 0); head 1: rows (0.6, 0.3, 0.1), (0, 0, 1)
  const float h0[] = {0.2f, 0.3f, 0.5f, 1, 0, 0}, h1[] = {0.6f, 0.3f, 0.1f, 0, 0, 1};
  for (int i = 0; i < 6; ++i) {
    a.p[static_cast<size_t>(i)] = h0[i];
    a.p[static_cast<size_t>(6 + i)] = h1[i];
  }
  const AttentionPattern mean = fuse_heads(a, HeadFusion::kMean), mx = fuse_heads(a, HeadFusion::kMax),
                         mn = fuse_heads(a, HeadFusion::kMin);
  EXPECT_NEAR(mean.at(0, 0, 0), 0.4, 1e-7);
  EXPECT_NEAR(mean.at(0, 1, 2), 0.5, 1e-7);
  EXPECT_NEAR(mx.at(0, 0, 2), 0.5, 1e-7);
  EXPECT_NEAR(mn.at(0, 0, 0), 0.2, 1e-7);
  EXPECT_EQ(select_head(a, 1).at(0, 1, 2), 1);
  const std::vector<float> rows = mean_rows(mean, {});
  EXPECT_NEAR(rows[0], (0.4 + 0.5) / 2, 1e-7);
  EXPECT_NEAR(rows[2], (0.3 + 0.5) / 2, 1e-7);
  EXPECT_NEAR(mean_patterns({a, a}).at(1, 1, 2), 1, 1e-7);
  EXPECT_NEAR(mean_patterns({select_head(a, 0), select_head(a, 1)}).at(0, 0, 0), 0.4, 1e-7);  // = mean fusion
  EXPECT_THROW(mean_rows(a, {}), Error);                                                      // two heads: fuse first
  EXPECT_THROW(select_head(a, 2), Error);
  EXPECT_THROW(mean_rows(mean, {5}), Error);
  EXPECT_EQ(parse_head_fusion("max"), HeadFusion::kMax);
  EXPECT_THROW(parse_head_fusion("median"), Error);
  AttentionPattern broken(1, 2, 2);
  broken.p.pop_back();
  EXPECT_NE(error_of([&] { fuse_heads(broken, HeadFusion::kMean); }).find("fuse_heads"), std::string::npos);
}

TEST(AttentionMetrics, RolloutByHand) {
  // A1: every token attends to token 0 → Â1 = ½A1 + ½I = [[1, 0], [½, ½]].
  // A2: every token attends to token 1 → Â2 = [[½, ½], [0, 1]].
  AttentionPattern a1(1, 2, 2), a2(1, 2, 2);
  a1.at(0, 0, 0) = a1.at(0, 1, 0) = 1;
  a2.at(0, 0, 1) = a2.at(0, 1, 1) = 1;
  // Two layers of A1: Â1·Â1 = [[1, 0], [¾, ¼]].
  const AttentionPattern r11 = attention_rollout({a1, a1}, HeadFusion::kMean);
  EXPECT_NEAR(r11.at(0, 0, 0), 1, 1e-7);
  EXPECT_NEAR(r11.at(0, 1, 0), 0.75, 1e-7);
  EXPECT_NEAR(r11.at(0, 1, 1), 0.25, 1e-7);
  // Order: layers {A1, A2} give Â2·Â1 = [[¾, ¼], [½, ½]] (Â1·Â2 would be [[½, ½], [¼, ¾]]).
  const AttentionPattern r12 = attention_rollout({a1, a2}, HeadFusion::kMean);
  EXPECT_NEAR(r12.at(0, 0, 0), 0.75, 1e-7);
  EXPECT_NEAR(r12.at(0, 0, 1), 0.25, 1e-7);
  EXPECT_NEAR(r12.at(0, 1, 0), 0.5, 1e-7);
  // Rows are normalised by their own sums (keepdim), which matters when fusion breaks stochasticity:
  // max of heads [[1,0],[.2,.8]] and [[.4,.6],[.9,.1]] = [[1,.6],[.9,.8]]; ½·max + ½I = [[1,.3],[.45,.9]];
  // rows / (1.3, 1.35) = [[10/13, 3/13], [1/3, 2/3]]. (Dividing by column sums would give 1/1.45 in [0][0].)
  AttentionPattern two(2, 2, 2);
  const float v[] = {1, 0, 0.2f, 0.8f, 0.4f, 0.6f, 0.9f, 0.1f};
  for (int i = 0; i < 8; ++i) two.p[static_cast<size_t>(i)] = v[i];
  const AttentionPattern r = attention_rollout({two}, HeadFusion::kMax);
  EXPECT_NEAR(r.at(0, 0, 0), 10.0 / 13, 1e-6);
  EXPECT_NEAR(r.at(0, 0, 1), 3.0 / 13, 1e-6);
  EXPECT_NEAR(r.at(0, 1, 0), 1.0 / 3, 1e-6);
  EXPECT_NEAR(r.at(0, 1, 1), 2.0 / 3, 1e-6);
  // Identity attention rolls out to the identity; rows of a rollout of stochastic layers sum to one.
  AttentionPattern eye(3, 4, 4);
  for (int h = 0; h < 3; ++h)
    for (int i = 0; i < 4; ++i) eye.at(h, i, i) = 1;
  const AttentionPattern re = attention_rollout({eye, eye, eye}, HeadFusion::kMin);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(re.at(0, i, j), i == j ? 1 : 0, 1e-7);
  AttentionPattern mixed(2, 4, 4);
  for (size_t i = 0; i < mixed.p.size(); ++i) mixed.p[i] = 0.25f;
  const AttentionPattern rm = attention_rollout({mixed, eye, mixed}, HeadFusion::kMean);
  for (int q = 0; q < 4; ++q) {
    double sum = 0;
    for (int k = 0; k < 4; ++k) sum += rm.at(0, q, k);
    EXPECT_NEAR(sum, 1, 1e-6);
  }
  EXPECT_THROW(attention_rollout({a1, eye}, HeadFusion::kMean), Error);                    // sizes differ
  EXPECT_THROW(attention_rollout({AttentionPattern(1, 2, 3)}, HeadFusion::kMean), Error);  // not square
}

// A hand-made layout: 2 cameras on a 2×2 grid (positions 0–7), 3 language tokens (the last is padding),
// one state token, then 2 action tokens.
PrefixLayout small_layout() {
  PrefixLayout l;
  l.batch = 1;
  l.grid_rows = l.grid_cols = 2;
  l.camera_names = {"front", "wrist"};
  l.language_begin = 8;
  l.language_len = 3;
  l.state_index = 11;
  l.prefix_len = 12;
  l.suffix_len = 2;
  std::vector<LayoutToken> t;
  for (int cam = 0; cam < 2; ++cam)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) {
        LayoutToken x;
        x.kind = TokenKind::kImage;
        x.camera = cam;
        x.row = r;
        x.col = c;
        t.push_back(x);
      }
  const char* words[] = {"pick", " cube", ""};
  for (int i = 0; i < 3; ++i) {
    LayoutToken x;
    x.kind = TokenKind::kLanguage;
    x.token_id = 100 + i;
    x.piece = words[i];
    x.padding = i == 2;
    t.push_back(x);
  }
  LayoutToken state;
  state.kind = TokenKind::kState;
  t.push_back(state);
  for (int a = 0; a < 2; ++a) {
    LayoutToken x;
    x.kind = TokenKind::kAction;
    x.action = a;
    t.push_back(x);
  }
  for (size_t i = 0; i < t.size(); ++i) t[i].position = static_cast<int>(i);
  l.tokens = {t};
  return l;
}

TEST(AttentionMetrics, RestrictsARowToOneCamera) {
  const PrefixLayout layout = small_layout();
  ASSERT_EQ(layout.image_token(1, 1, 0), 6);
  // Row over the 12 prefix keys: camera 0 gets 0.1 on each cell, camera 1 gets 0.05, 0.05, 0.2, 0.1 (sum 0.4),
  // language 0.1 + 0.05, padding 0 (masked), state 0.05 → total 1.
  const std::vector<float> row{0.1f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.2f, 0.1f, 0.1f, 0.05f, 0.0f, 0.05f};
  const CameraAttention cam1 = camera_attention(row, layout, 1);
  EXPECT_NEAR(cam1.row_total, 1, 1e-6);
  EXPECT_NEAR(cam1.camera_ratio, 0.4, 1e-6);
  EXPECT_NEAR(cam1.image_ratio, 0.8, 1e-6);
  EXPECT_NEAR(cam1.map.at(1, 0), 0.5, 1e-6);    // 0.2 / 0.4
  EXPECT_NEAR(cam1.map.at(0, 0), 0.125, 1e-6);  // 0.05 / 0.4
  // Excluding a sink cell removes it before renormalising.
  const CameraAttention sinkless = camera_attention(row, layout, 1, 0, {2});
  EXPECT_NEAR(sinkless.map.at(1, 0), 0, 1e-7);
  EXPECT_NEAR(sinkless.map.at(1, 1), 0.5, 1e-6);  // 0.1 / 0.2
  EXPECT_NEAR(sinkless.camera_ratio, 0.2, 1e-6);
  // Expert joint rows reach into the suffix: keys beyond the prefix are allowed up to the table's length.
  std::vector<float> joint = row;
  joint.push_back(0.3f);
  joint.push_back(0.3f);
  EXPECT_NEAR(camera_attention(joint, layout, 0).row_total, 1.6, 1e-6);
  joint.push_back(0.1f);
  EXPECT_THROW(camera_attention(joint, layout, 0), Error);  // more keys than the layout describes
  EXPECT_THROW(camera_attention(row, layout, 2), Error);    // no camera 2

  const TokenWeights words = language_attention(row, layout);
  ASSERT_EQ(words.pieces.size(), 2u);  // padding skipped
  EXPECT_EQ(words.pieces[1], " cube");
  EXPECT_EQ(words.positions[1], 9);
  EXPECT_NEAR(words.total, 0.15, 1e-6);
  EXPECT_EQ(last_language_token(layout), 9);
  EXPECT_EQ(state_token(layout), 11);
}

// ======================================== heatmaps ======================================================

// An 8×8 map that is zero except cell (4, 5) = 1. In the 640×480 frame that cell covers input
// [320, 384) × [256, 320) → frame x ∈ [400, 480), y ∈ [(256 − 128)/0.8, (320 − 128)/0.8) = [160, 240).
GridMap one_hot_cell() {
  GridMap m(8, 8, 0.0f);
  m.at(4, 5) = 1;
  return m;
}

TEST(Heatmap, UpsamplingUndoesThePadGeometry) {
  const PadGeometry g = resize_with_pad_geometry(640, 480);
  const std::vector<float> nearest = upsample_to_frame(one_hot_cell(), g, Upsample::kNearest);
  ASSERT_EQ(nearest.size(), 640u * 480u);
  int hot = 0;
  for (int y = 0; y < 480; ++y)
    for (int x = 0; x < 640; ++x) {
      const bool inside = x >= 400 && x < 480 && y >= 160 && y < 240;
      const float v = nearest[static_cast<size_t>(y) * 640 + x];
      EXPECT_EQ(v, inside ? 1.0f : 0.0f) << x << "," << y;
      hot += v == 1.0f;
      if (v != (inside ? 1.0f : 0.0f)) return;  // one failure is enough
    }
  EXPECT_EQ(hot, 80 * 80);
  // Bilinear peaks at the cell centre (440, 200) and fades over about one cell.
  const std::vector<float> smooth = upsample_to_frame(one_hot_cell(), g, Upsample::kBilinear);
  const size_t best = static_cast<size_t>(std::max_element(smooth.begin(), smooth.end()) - smooth.begin());
  EXPECT_NEAR(static_cast<double>(best % 640), 440, 1.0);
  EXPECT_NEAR(static_cast<double>(best / 640), 200, 1.0);
  EXPECT_EQ(smooth[100 * 640 + 100], 0.0f);
}

TEST(Heatmap, OverlayPutsTheHottestCellOnTheRightPixels) {
  const PadGeometry g = resize_with_pad_geometry(640, 480);
  const Image frame(640, 480, 3, 128);
  HeatStyle style;
  style.upsample = Upsample::kNearest;
  const Image out = heat_overlay(frame, one_hot_cell(), g, style);
  ASSERT_EQ(out.width, 640);
  ASSERT_EQ(out.height, 480);
  const uint8_t* hot = out.at(440, 200);
  const uint8_t* cold = out.at(100, 400);
  EXPECT_GT(hot[0], hot[2] + 30);  // turbo's top end is red, its bottom end blue
  EXPECT_GT(cold[2], cold[0]);
  int matching = 0, outside = 0;
  for (int y = 0; y < 480; ++y)
    for (int x = 0; x < 640; ++x)
      if (std::equal(hot, hot + 3, out.at(x, y))) {
        ++matching;
        outside += !(x >= 400 && x < 480 && y >= 160 && y < 240);
      }
  EXPECT_EQ(matching, 80 * 80);
  EXPECT_EQ(outside, 0);
  // The overlay is not the frame.
  int changed = 0;
  for (size_t i = 0; i < out.pixels.size(); ++i) changed += out.pixels[i] != 128;
  EXPECT_GT(changed, static_cast<int>(out.pixels.size() / 2));
  EXPECT_THROW(heat_overlay(Image(320, 240), one_hot_cell(), g), Error);  // frame does not match
}

TEST(Heatmap, SharedRangeKeepsColoursComparable) {
  const PadGeometry g = resize_with_pad_geometry(640, 480);
  GridMap weak = one_hot_cell();
  weak.at(4, 5) = 0.25f;
  const HeatRange range = shared_range({one_hot_cell(), weak});
  EXPECT_EQ(range.lo, 0);
  EXPECT_EQ(range.hi, 1);
  HeatStyle own, shared;
  own.upsample = shared.upsample = Upsample::kNearest;
  shared.range = range;
  const Image frame(640, 480, 3, 128);
  // Per-map scaling paints both peaks alike; a shared scale shows the weaker one cooler.
  const Image a = heat_overlay(frame, one_hot_cell(), g, own), b = heat_overlay(frame, weak, g, own);
  EXPECT_TRUE(std::equal(a.at(440, 200), a.at(440, 200) + 3, b.at(440, 200)));
  const Image c = heat_overlay(frame, weak, g, shared);
  EXPECT_FALSE(std::equal(a.at(440, 200), a.at(440, 200) + 3, c.at(440, 200)));
  // Clipping at a percentile lowers the top.
  GridMap spread(8, 8, 0.0f);
  for (int i = 0; i < 64; ++i) spread.values[static_cast<size_t>(i)] = static_cast<float>(i);
  EXPECT_LT(shared_range({spread}, 90).hi, 63);
}

TEST(Heatmap, GridViewBarsThumbnailsAndFigure) {
  const PadGeometry g = resize_with_pad_geometry(640, 480);
  const Image grid = grid_view(one_hot_cell(), g, 24);
  ASSERT_EQ(grid.width, 8 * 24);
  ASSERT_EQ(grid.height, 8 * 24);
  // The image extent starts 128/512 of the way down: a white outline at y = 48.
  EXPECT_EQ(grid.at(100, 48)[0], 255);
  EXPECT_EQ(grid.at(100, 48)[2], 255);
  const uint8_t* hot = grid.at(5 * 24 + 12, 4 * 24 + 12);
  EXPECT_GT(hot[0], hot[2] + 50);

  TokenWeights words;
  words.pieces = {"pick", "\xC4\xA0up", "the", "cube\n"};
  words.weights = {0.05f, 0.2f, 0.01f, 0.1f};
  const Image bars = token_bars(words, 260, 14);
  EXPECT_EQ(bars.height, 4 + 4 * 14 + 4);
  // The heaviest token's bar runs to the end of the bar area (x = 260 − 44 − 1); the others stop short.
  EXPECT_EQ(bars.at(260 - 44 - 2, 4 + 14 + 7)[0], 240);
  EXPECT_NE(bars.at(260 - 44 - 2, 4 + 7)[0], 240);
  EXPECT_EQ(token_bars(TokenWeights{}).height, 4 + 14 + 4);

  std::vector<std::vector<GridMap>> maps(3, std::vector<GridMap>(4, one_hot_cell()));
  maps[2][3] = GridMap(8, 8, 0.5f);
  const Image frame(640, 480, 3, 90);
  const Image thumbs = layer_head_grid(maps, &frame, g, {}, 64);
  EXPECT_EQ(thumbs.width, 34 + 4 * (64 + 2));
  EXPECT_EQ(thumbs.height, 16 + 3 * (48 + 2));
  const Image raw = layer_head_grid(maps, nullptr, g, {}, 64);
  EXPECT_EQ(raw.width, 34 + 4 * (64 + 2));
  EXPECT_THROW(layer_head_grid({{one_hot_cell()}, {}}, nullptr, g), Error);

  const TokenWeights* none = nullptr;
  HeatStyle style;
  style.range = HeatRange{0, 1};
  const Image fig = camera_figure(frame, one_hot_cell(), g, &words, style, "vlm layer 8, mean of heads");
  EXPECT_GT(fig.width, 640 + 8 * 60);
  EXPECT_GT(camera_figure(frame, one_hot_cell(), g, none).width, 640);
  const std::string path = (temp_dir() / "figure.png").string();
  write_png(path, fig);
  const Image back = read_png(path);
  EXPECT_EQ(back.width, fig.width);
  EXPECT_EQ(back.height, fig.height);
  std::filesystem::remove_all(temp_dir());
}

// ======================================== neuron sets ===================================================

ModelShape smolvla_shape() {
  ModelShape s;
  s.vlm = StreamShape::contiguous(16, 2560, 960);
  s.expert.ffn_width = 2048;
  s.expert.width = 720;
  for (int i = 0; i < 16; i += 2) s.expert.layers.push_back(i);  // an expert paired with every other layer
  return s;
}

NeuronSet high_set() {
  NeuronSet s;
  s.name = "high";
  s.description = "value vectors whose top tokens mean \"up\" / \"high\"";
  s.provenance = {"logit-lens, top-10 tokens, hand-picked", "models/small_unfrozen", "2026-05-01"};
  s.neurons = {{Stream::kVlm, 15, 1234, "up, high, above"}, {Stream::kVlm, 12, 7, ""}, {Stream::kExpert, 4, 2047, ""}};
  return s;
}

TEST(NeuronSets, JsonRoundTripThroughAFile) {
  NeuronSet slow;
  slow.name = "slow_v2";
  slow.neurons = {{Stream::kExpert, 0, 0, "", -0.25}};  // a weighted channel (a direction)
  const std::vector<NeuronSet> sets{high_set(), slow};
  const std::string path = (temp_dir() / "sets.json").string();
  write_neuron_sets(path, sets);
  const std::vector<NeuronSet> back = read_neuron_sets(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].name, "high");
  EXPECT_EQ(back[0].description, sets[0].description);
  EXPECT_EQ(back[0].provenance.method, sets[0].provenance.method);
  EXPECT_EQ(back[0].provenance.model, "models/small_unfrozen");
  EXPECT_EQ(back[0].provenance.date, "2026-05-01");
  ASSERT_EQ(back[0].neurons.size(), 3u);
  EXPECT_EQ(back[0].neurons[0], sets[0].neurons[0]);
  EXPECT_EQ(back[0].neurons[0].note, "up, high, above");
  EXPECT_EQ(back[0].neurons[2].stream, Stream::kExpert);
  EXPECT_EQ(back[1].neurons.size(), 1u);
  EXPECT_EQ(back[1].neurons[0].weight, -0.25);
  EXPECT_EQ(back[0].neurons[0].weight, 1);  // unweighted entries carry no "weight" key and read back as 1
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // One neuron per line: a person can edit it.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\n        {\"index\":1234,\"layer\":15,\"note\":\"up, high, above\",\"stream\":\"vlm\"}"),
            std::string::npos)
      << text;
  EXPECT_EQ(&find_neuron_set(back, "slow_v2"), &back[1]);
  EXPECT_NE(error_of([&] { find_neuron_set(back, "fast"); }).find("known: high, slow_v2"), std::string::npos);
  EXPECT_THROW(read_neuron_sets((temp_dir() / "missing.json").string()), Error);
  std::filesystem::remove_all(temp_dir());
}

TEST(NeuronSets, ParseErrorsNameTheSetAndEntry) {
  const std::string head = R"({"format": "vlascope.neuron_sets", "version": 1, "sets": [{"name": "low", "neurons": [)";
  auto parse = [&](const std::string& neurons) {
    return error_of([&] { parse_neuron_sets(head + neurons + "]}]}", "low.json"); });
  };
  EXPECT_EQ(parse(R"({"stream": "vlm", "layer": 3, "index": 9, "_comment": "ok"})"), "");
  std::string e = parse(R"({"stream": "vlm", "layer": 3, "index": 9}, {"stream": "vlm", "index": 4})");
  EXPECT_NE(e.find("low.json"), std::string::npos) << e;
  EXPECT_NE(e.find("set 'low'"), std::string::npos) << e;
  EXPECT_NE(e.find("neuron 1"), std::string::npos) << e;
  EXPECT_NE(e.find("'layer'"), std::string::npos) << e;
  e = parse(R"({"strem": "vlm", "layer": 3, "index": 9})");
  EXPECT_NE(e.find("unknown field 'strem'"), std::string::npos) << e;
  e = parse(R"({"stream": "vision", "layer": 3, "index": 9})");
  EXPECT_NE(e.find("'vision'"), std::string::npos) << e;
  e = parse(R"({"stream": "vlm", "layer": 3, "index": -2})");
  EXPECT_NE(e.find("'index'"), std::string::npos) << e;
  e = parse(R"({"stream": "vlm", "layer": 3.5, "index": 2})");
  EXPECT_NE(e.find("integer"), std::string::npos) << e;
  e = parse(R"({"stream": "vlm", "layer": 3, "index": 9}, {"stream": "vlm", "layer": 3, "index": 9})");
  EXPECT_NE(e.find("duplicate of neuron 0"), std::string::npos) << e;
  EXPECT_NE(error_of([] { parse_neuron_sets("{\"sets\": [", "x.json"); }).find("x.json: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_neuron_sets("{\"sets\": [], \"version\": 1e400}", "h.json"); })
                .find("h.json: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_neuron_sets(R"({"sets": [{"name": "a", "neurons": []}, {"name": "a", "neurons": []}]})", "d.json");
            }).find("already defined"),
            std::string::npos);
  EXPECT_THROW(parse_neuron_sets(R"({"format": "something.else", "sets": []})", "f.json"), Error);
  EXPECT_THROW(parse_neuron_sets(R"({"version": 2, "sets": []})", "v.json"), Error);
  EXPECT_THROW(parse_neuron_sets(R"({"sets": [{"name": "bad name", "neurons": []}]})", "n.json"), Error);
  // Token regions: named kinds only; one channel may appear once per kind of row.
  e = parse(R"({"stream": "vlm", "layer": 3, "index": 9, "tokens": "pixels"})");
  EXPECT_NE(e.find("neuron 0"), std::string::npos) << e;
  EXPECT_NE(e.find("'pixels' is not one of all, images, words, state, last_word"), std::string::npos) << e;
  EXPECT_EQ(parse(R"({"stream": "vlm", "layer": 3, "index": 9, "tokens": "words"},)"
                  R"({"stream": "vlm", "layer": 3, "index": 9, "tokens": "images"})"),
            "");
  e = parse(R"({"stream": "vlm", "layer": 3, "index": 9, "tokens": "words"},)"
            R"({"stream": "vlm", "layer": 3, "index": 9, "tokens": "words"})");
  EXPECT_NE(e.find("on the words): duplicate of neuron 0"), std::string::npos) << e;
}

TEST(NeuronSets, TokenRegionsRoundTripAndExpertChannelsTakeAllRows) {
  NeuronSet set;
  set.name = "prompt_rise_tokens";
  set.neurons = {{Stream::kVlm, 2, 7, "", 0.5}, {Stream::kVlm, 2, 7, "", -0.25}, {Stream::kVlm, 4, 1, ""}};
  set.neurons[0].tokens = TokenRegion::kWords;
  set.neurons[1].tokens = TokenRegion::kImages;
  const std::vector<NeuronSet> back = parse_neuron_sets(neuron_sets_to_json({set}), "rt.json");
  ASSERT_EQ(back.size(), 1u);
  ASSERT_EQ(back[0].neurons.size(), 3u);
  EXPECT_EQ(back[0].neurons[0].tokens, TokenRegion::kWords);
  EXPECT_EQ(back[0].neurons[1].tokens, TokenRegion::kImages);
  EXPECT_EQ(back[0].neurons[2].tokens, TokenRegion::kAll);  // no "tokens" key: every row
  EXPECT_EQ(neuron_sets_to_json(back).find("\"tokens\":\"all\""), std::string::npos);
  EXPECT_NO_THROW(validate_neuron_set(set, smolvla_shape()));
  set.neurons.push_back({Stream::kExpert, 1, 3, ""});
  set.neurons.back().tokens = TokenRegion::kState;
  const std::string e = error_of([&] { validate_neuron_set(set, smolvla_shape()); });
  EXPECT_NE(e.find("entry 3 (expert layer 1 index 3 on the state): tokens 'state': an expert channel acts on the "
                   "action tokens"),
            std::string::npos)
      << e;
}

TEST(NeuronSets, ResidualChannelsRoundTripValidateAgainstTheWidthAndDrawTheirOwnControls) {
  NeuronSet set;
  set.name = "prompt_rise_resid3";
  set.neurons = {{Stream::kVlm, 3, 7, "", 0.5}, {Stream::kVlm, 3, 7, "", -0.25}};
  set.neurons[0].site = ChannelSite::kResidPost;  // the same index as an FFN neuron is another channel
  const std::vector<NeuronSet> back = parse_neuron_sets(neuron_sets_to_json({set}), "rt.json");
  ASSERT_EQ(back[0].neurons.size(), 2u);
  EXPECT_EQ(back[0].neurons[0].site, ChannelSite::kResidPost);
  EXPECT_EQ(back[0].neurons[1].site, ChannelSite::kMlpPost);  // no "site" key
  EXPECT_EQ(neuron_sets_to_json(back).find("mlp.post"), std::string::npos);
  const ModelShape shape = smolvla_shape();
  EXPECT_NO_THROW(validate_neuron_set(set, shape));
  set.neurons[0].index = 960;  // in the FFN's range, not the residual stream's
  std::string e = error_of([&] { validate_neuron_set(set, shape); });
  EXPECT_NE(e.find("entry 0 (vlm layer 3 index 960 of resid.post): index 960 is out of range (residual width 960)"),
            std::string::npos)
      << e;
  e = error_of([&] {
    parse_neuron_sets(R"({"format": "vlascope.neuron_sets", "version": 1, "sets": [{"name": "s", "neurons": [)"
                      R"({"stream": "vlm", "layer": 3, "index": 9, "site": "attn.out"}]}]})",
                      "bad.json");
  });
  EXPECT_NE(e.find("bad.json: set 's' (sets[0]) neuron 0: site 'attn.out' is not one of mlp.post, resid.post"),
            std::string::npos)
      << e;
  // A random control draws residual channels within the residual width, on the same site.
  ModelShape tiny;
  tiny.vlm = StreamShape::contiguous(1, 100, 2);
  NeuronSet one{"one", "", {}, {{Stream::kVlm, 0, 0, ""}}};
  one.neurons[0].site = ChannelSite::kResidPost;
  const NeuronSet r = random_like(one, tiny, 1, "r");
  EXPECT_EQ(r.neurons[0].index, 1);
  EXPECT_EQ(r.neurons[0].site, ChannelSite::kResidPost);
}

TEST(NeuronSets, ValidationAgainstModelSizes) {
  const ModelShape shape = smolvla_shape();
  EXPECT_NO_THROW(validate_neuron_set(high_set(), shape));
  NeuronSet bad = high_set();
  bad.neurons.push_back({Stream::kVlm, 16, 5, ""});          // entry 3: VLM has layers 0–15
  bad.neurons.push_back({Stream::kVlm, 2, 2560, ""});        // entry 4: width 2560
  bad.neurons.push_back({Stream::kExpert, 3, 10, ""});       // entry 5: no expert at layer 3
  bad.neurons.push_back({Stream::kVlm, 15, 1234, "again"});  // entry 6: duplicate of entry 0
  const std::string e = error_of([&] { validate_neuron_set(bad, shape); });
  EXPECT_NE(e.find("neuron set 'high'"), std::string::npos) << e;
  EXPECT_NE(e.find("entry 3 (vlm layer 16 index 5): the vlm stream has no layer 16"), std::string::npos) << e;
  EXPECT_NE(e.find("entry 4 (vlm layer 2 index 2560): index 2560 is out of range (FFN width 2560)"), std::string::npos)
      << e;
  EXPECT_NE(e.find("entry 5 (expert layer 3 index 10): the expert stream has no layer 3"), std::string::npos) << e;
  EXPECT_NE(e.find("entry 6 (vlm layer 15 index 1234): duplicate of entry 0"), std::string::npos) << e;
  NeuronSet empty;
  empty.name = "nothing";
  EXPECT_THROW(validate_neuron_set(empty, shape), Error);
  // A whole layer (the MLP ablation's set): every channel once, valid, and only layers the stream has.
  const NeuronSet layer = whole_layer_set(Stream::kExpert, 4, ChannelSite::kMlpPost, shape, "mlp_expert4");
  ASSERT_EQ(layer.neurons.size(), static_cast<size_t>(shape.expert.ffn_width));
  for (size_t i = 0; i < layer.neurons.size(); ++i) {
    ASSERT_EQ(layer.neurons[i].index, static_cast<int>(i));
    ASSERT_EQ(layer.neurons[i].layer, 4);
    ASSERT_EQ(layer.neurons[i].weight, 1.0);
  }
  EXPECT_NO_THROW(validate_neuron_set(layer, shape));
  EXPECT_EQ(whole_layer_set(Stream::kVlm, 0, ChannelSite::kResidPost, shape, "r").neurons.size(),
            static_cast<size_t>(shape.vlm.width));
  EXPECT_THROW(whole_layer_set(Stream::kExpert, 3, ChannelSite::kMlpPost, shape, "x"), Error);  // no expert layer 3
}

TEST(NeuronSets, RandomControlsOverlapAndLayers) {
  const ModelShape shape = smolvla_shape();
  const NeuronSet reference = high_set();
  const NeuronSet r1 = random_like(reference, shape, 11, "high_random");
  const NeuronSet r2 = random_like(reference, shape, 11, "high_random");
  const NeuronSet r3 = random_like(reference, shape, 12, "high_random");
  ASSERT_EQ(r1.neurons.size(), reference.neurons.size());
  for (size_t i = 0; i < r1.neurons.size(); ++i) {
    EXPECT_EQ(r1.neurons[i].stream, reference.neurons[i].stream);
    EXPECT_EQ(r1.neurons[i].layer, reference.neurons[i].layer);
    EXPECT_EQ(r1.neurons[i], r2.neurons[i]);
  }
  EXPECT_NO_THROW(validate_neuron_set(r1, shape));
  EXPECT_EQ(overlap(r1, reference).shared, 0);
  EXPECT_FALSE(r1.neurons == r3.neurons);
  // A tiny model where the layer has only one free neuron left.
  ModelShape tiny;
  tiny.vlm = StreamShape::contiguous(1, 2, 1);
  NeuronSet one;
  one.name = "one";
  one.neurons = {{Stream::kVlm, 0, 0, ""}};
  EXPECT_EQ(random_like(one, tiny, 1, "r").neurons[0].index, 1);
  // A set that takes more than half a layer (a dense direction) keeps its channels and shuffles its weights.
  NeuronSet dense{"dense", "", {}, {}};
  tiny.vlm = StreamShape::contiguous(1, 8, 4);
  for (int i = 0; i < 5; ++i) dense.neurons.push_back({Stream::kVlm, 0, i, "", 1.0 + i});
  const NeuronSet shuffled = random_like(dense, tiny, 3, "r");
  ASSERT_EQ(shuffled.neurons.size(), 5u);
  std::vector<double> weights;
  bool moved = false;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(shuffled.neurons[i].index, i);
    weights.push_back(shuffled.neurons[i].weight);
    moved = moved || shuffled.neurons[i].weight != 1.0 + i;
  }
  EXPECT_TRUE(moved);
  std::sort(weights.begin(), weights.end());
  EXPECT_EQ(weights, (std::vector<double>{1, 2, 3, 4, 5}));

  NeuronSet other = high_set();
  other.neurons.pop_back();
  other.neurons.push_back({Stream::kVlm, 1, 1, ""});
  const SetOverlap o = overlap(high_set(), other);
  EXPECT_EQ(o.shared, 2);
  EXPECT_NEAR(o.jaccard, 2.0 / 4, 1e-12);
  const auto vlm = indices_by_layer(high_set(), Stream::kVlm);
  ASSERT_EQ(vlm.size(), 2u);
  EXPECT_EQ(vlm.at(15), std::vector<int>{1234});
  EXPECT_EQ(indices_by_layer(high_set(), Stream::kExpert).at(4), std::vector<int>{2047});
  EXPECT_EQ(mlp_post_hook(Stream::kExpert, 4), "expert.layers.4.mlp.post");
}

TEST(Interventions, JsonRoundTripAndSchedule) {
  Intervention all;
  all.set = "high";
  all.alpha = 4;
  Intervention late;
  late.set = "slow";
  late.op = InterventionOp::kScale;
  late.alpha = 0.25;
  late.prefix_pass = false;
  late.steps = {7, 8, 9};
  const std::string path = (temp_dir() / "steer.json").string();
  write_interventions(path, {all, late});
  const std::vector<Intervention> back = read_interventions(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].set, "high");
  EXPECT_EQ(back[0].op, InterventionOp::kSet);
  EXPECT_EQ(back[0].alpha, 4);
  EXPECT_TRUE(back[0].prefix_pass && back[0].denoise_passes && back[0].steps.empty());
  EXPECT_EQ(back[1].op, InterventionOp::kScale);
  EXPECT_EQ(back[1].alpha, 0.25);
  EXPECT_FALSE(back[1].prefix_pass);
  EXPECT_EQ(back[1].steps, (std::vector<int>{7, 8, 9}));
  std::filesystem::remove_all(temp_dir());

  EXPECT_TRUE(back[0].applies(true, -1));
  EXPECT_TRUE(back[0].applies(false, 3));
  EXPECT_FALSE(back[1].applies(true, -1));
  EXPECT_FALSE(back[1].applies(false, 3));
  EXPECT_TRUE(back[1].applies(false, 8));
  EXPECT_EQ(back[0].describe(), "set high := 4 in prefix+denoise (all steps)");
  EXPECT_EQ(back[1].describe(), "scale slow *= 0.25 in denoise (steps 7 8 9)");

  // Parsing: passes default to both; bad op, bad pass, steps without denoise are errors naming the entry.
  const auto one = parse_interventions(R"({"interventions": [{"set": "low", "op": "add", "alpha": -2}]})", "s.json");
  EXPECT_TRUE(one[0].prefix_pass && one[0].denoise_passes);
  EXPECT_EQ(one[0].op, InterventionOp::kAdd);
  std::string e = error_of(
      [] { parse_interventions(R"({"interventions": [{"set": "low", "op": "multiply", "alpha": 2}]})", "s.json"); });
  EXPECT_NE(e.find("s.json: interventions[0]"), std::string::npos) << e;
  EXPECT_NE(e.find("'multiply'"), std::string::npos) << e;
  EXPECT_THROW(parse_interventions(
                   R"({"interventions": [{"set": "low", "op": "set", "alpha": 2, "passes": ["vision"]}]})", "s.json"),
               Error);
  EXPECT_THROW(
      parse_interventions(
          R"({"interventions": [{"set": "low", "op": "set", "alpha": 2, "passes": ["prefix"], "steps": [1]}]})",
          "s.json"),
      Error);
  EXPECT_THROW(parse_interventions(R"({"interventions": [{"set": "low", "op": "set"}]})", "s.json"), Error);

  const std::vector<NeuronSet> sets{high_set()};
  EXPECT_NO_THROW(validate_intervention(all, sets, 10));
  e = error_of([&] { validate_intervention(late, sets, 10); });
  EXPECT_NE(e.find("no neuron set named 'slow'"), std::string::npos) << e;
  Intervention far = all;
  far.steps = {10};
  EXPECT_NE(error_of([&] { validate_intervention(far, sets, 10); }).find("step 10"), std::string::npos);
}

// A 128×128 mask painted in quadrants: red cube top-left, green gripper top-right, blue arm bottom-left, white
// background bottom-right, with off-palette brush-edge pixels that must snap to the nearest colour.
Image painted_quadrants() {
  Image img(128, 128, 3, 255);
  for (int y = 0; y < 128; ++y)
    for (int x = 0; x < 128; ++x) {
      uint8_t* p = img.at(x, y);
      const uint8_t rgb[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
      const int q = (y >= 64) * 2 + (x >= 64);
      for (int c = 0; c < 3; ++c) p[c] = rgb[q][c];
    }
  const uint8_t reddish[3] = {200, 30, 30}, dark[3] = {40, 40, 40};
  std::copy(reddish, reddish + 3, img.at(10, 10));
  std::copy(dark, dark + 3, img.at(100, 100));
  return img;
}

TEST(LabelMask, ColoursMapToTheClassesScoreAttentionScores) {
  const std::string path = (temp_dir() / "mask_quadrants.png").string();
  write_png(path, painted_quadrants());
  const LabelImage m = read_label_mask(path);
  ASSERT_EQ(m.width, 128);
  ASSERT_EQ(m.height, 128);
  EXPECT_EQ(m.at(0, 0), 2);      // cube
  EXPECT_EQ(m.at(10, 10), 2);    // reddish edge → cube
  EXPECT_EQ(m.at(127, 0), 3);    // gripper
  EXPECT_EQ(m.at(0, 127), 4);    // arm
  EXPECT_EQ(m.at(127, 127), 0);  // white → background
  EXPECT_EQ(m.at(100, 100), 0);  // dark grey → black → background

  // An 8×8 map over a square 128² input (no padding): each quadrant is 4×4 cells.
  const PadGeometry g = resize_with_pad_geometry(128, 128, 128, 128);
  auto score = [&](const std::vector<std::pair<int, int>>& cells) {
    CameraAttention a;
    a.map = GridMap(8, 8);
    for (auto [r, c] : cells) a.map.at(r, c) = 1.f / static_cast<float>(cells.size());
    return score_attention(a, m, g);
  };
  const AttentionScores on_cube = score({{1, 1}});
  EXPECT_NEAR(on_cube.cube.mass, 1, 1e-6);
  EXPECT_NEAR(on_cube.cube.chance, 0.25, 1e-6);
  EXPECT_TRUE(on_cube.pointing.hit);
  EXPECT_NEAR(on_cube.gripper.mass + on_cube.arm.mass + on_cube.background.mass, 0, 1e-6);
  const AttentionScores split = score({{0, 7}, {7, 0}});  // half on the gripper, half on the arm
  EXPECT_NEAR(split.gripper.mass, 0.5, 1e-6);
  EXPECT_NEAR(split.arm.mass, 0.5, 1e-6);
  EXPECT_FALSE(split.pointing.hit);
  EXPECT_NEAR(score({{6, 6}}).background.mass, 1, 1e-6);

  // Nearest-neighbour resizing keeps classes unblended; another aspect ratio cannot line up.
  const LabelImage big = fit_label_mask(m, 256, 256, path);
  EXPECT_EQ(big.at(127, 127), 2);
  EXPECT_EQ(big.at(128, 127), 3);
  EXPECT_EQ(big.at(127, 128), 4);
  EXPECT_EQ(fit_label_mask(m, 64, 64, path).at(63, 63), 0);
  EXPECT_NE(error_of([&] { fit_label_mask(m, 128, 96, path); }).find(path), std::string::npos);
}

TEST(LabelMask, SourceFitsTheFrameAndErrorsNameTheFile) {
  const std::string path = (temp_dir() / "mask_scene.png").string();
  write_png(path, painted_quadrants());
  const SegmentationSource source = mask_segmentation("scene=" + path);
  Observation obs;
  obs.images["scene"] = Image(256, 256);
  obs.images["wrist"] = Image(64, 64);
  const std::map<std::string, LabelImage> seg = source(obs);
  ASSERT_EQ(seg.size(), 1u);  // the wrist camera has no mask
  EXPECT_EQ(seg.at("scene").width, 256);
  EXPECT_EQ(seg.at("scene").at(255, 255), 0);
  EXPECT_EQ(seg.at("scene").at(0, 0), 2);

  Observation no_scene;
  no_scene.images["wrist"] = Image(64, 64);
  EXPECT_NE(error_of([&] { source(no_scene); }).find("camera scene"), std::string::npos);
  const std::string missing = (temp_dir() / "no_such_mask.png").string();
  EXPECT_NE(error_of([&] { mask_segmentation("scene=" + missing); }).find(missing), std::string::npos);
  EXPECT_NE(error_of([&] { mask_segmentation(path); }).find("camera=path"), std::string::npos);
  const std::string garbage = (temp_dir() / "not_a_png.png").string();
  std::ofstream(garbage) << "not an image";
  EXPECT_NE(error_of([&] { read_label_mask(garbage); }).find(garbage), std::string::npos);
  Image photo(64, 64);  // mid-grey gradient: near none of the colours
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) photo.at(x, y)[c] = static_cast<uint8_t>(96 + x);
  const std::string photo_path = (temp_dir() / "photo.png").string();
  write_png(photo_path, photo);
  EXPECT_NE(error_of([&] { read_label_mask(photo_path); }).find("photo"), std::string::npos);
}

TEST(AttentionStudy, BlankCellsGreysOnlyTheCellsPixels) {
  // 64×48 frame into a 64² input: no scaling, 16 padding rows on top, so grid row 0 (of 4) is all padding.
  const PadGeometry g = resize_with_pad_geometry(64, 48, 64, 64);
  Image frame(64, 48, 3, 7);
  const Image out = blank_cells(frame, {0, 5}, 4, 4, g);  // cell 0: padding only; cell 5 = row 1, col 1
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) {
      const bool in_cell = x >= 16 && x < 32 && y < 16;
      EXPECT_EQ(out.at(x, y)[0], in_cell ? 128 : 7) << x << "," << y;
    }
}

}  // namespace
}  // namespace vlascope
