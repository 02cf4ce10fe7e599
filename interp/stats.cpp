#include "interp/stats.h"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/special_functions/beta.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "common/error.h"

namespace vlascope {

namespace {


void require_finite(const std::vector<double>& x, const char* where, const char* name) {
  for (size_t i = 0; i < x.size(); ++i)
    require(std::isfinite(x[i]),
            std::string(where) + ": sample " + name + " has a non-finite value at index " + std::to_string(i));
}

void require_size(const std::vector<double>& x, size_t n, const char* where, const char* name) {
  require(x.size() >= n, std::string(where) + ": sample " + name + " has " + std::to_string(x.size()) +
                             " values, needs at least " + std::to_string(n));
  require_finite(x, where, name);
}

void require_level(double level, const char* where) {
  require(level > 0 && level < 1,
          std::string(where) + ": confidence level must be in (0, 1), got " + std::to_string(level));
}

double sum_of(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0); }

// Sum of squared deviations from the mean (two-pass for accuracy).
double squared_deviations(const std::vector<double>& x) {
  const double m = sum_of(x) / static_cast<double>(x.size());
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return s;
}

// Uniform integer in [0, n) from a 64-bit generator, by rejection: identical on every standard library.
uint64_t draw_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t r;
  do r = rng();
  while (r >= limit);
  return r % n;
}

double binomial_coefficient(int n, int k) {
  double c = 1;
  for (int i = 1; i <= k; ++i) c = c * (n - k + i) / i;
  return std::round(c);
}

}  // namespace

// ---- distributions -------------------------------------------------------------------------------------

double incomplete_beta(double a, double b, double x) {
  require(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b),
          "incomplete_beta: a and b must be positive, got a=" + std::to_string(a) + " b=" + std::to_string(b));
  require(x >= 0 && x <= 1, "incomplete_beta: x must be in [0, 1], got " + std::to_string(x));
  return boost::math::ibeta(a, b, x);
}

double student_t_cdf(double t, double df) {
  require(df > 0, "student_t_cdf: degrees of freedom must be positive, got " + std::to_string(df));
  require(!std::isnan(t), "student_t_cdf: t is NaN");
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  return boost::math::cdf(boost::math::students_t(df), t);
}

double student_t_two_sided_p(double t, double df) {
  require(df > 0, "student_t_two_sided_p: degrees of freedom must be positive, got " + std::to_string(df));
  require(!std::isnan(t), "student_t_two_sided_p: t is NaN");
  if (std::isinf(t)) return 0;
  // The upper tail directly (not 1 − cdf), so a p of 1e-12 keeps its digits.
  return 2 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::fabs(t)));
}

// Boost's quantile, or ±∞ when p is so near 0 or 1 that the quantile is beyond any double (Boost throws there).
template <class Distribution>
double quantile_or_infinity(const Distribution& distribution, double p) {
  try {
    return boost::math::quantile(distribution, p);
  } catch (const std::overflow_error&) {
    return p < 0.5 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
}

double student_t_quantile(double p, double df) {
  require(p > 0 && p < 1, "student_t_quantile: p must be in (0, 1), got " + std::to_string(p));
  require(df > 0, "student_t_quantile: degrees of freedom must be positive, got " + std::to_string(df));
  return quantile_or_infinity(boost::math::students_t(df), p);
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double normal_quantile(double p) {
  require(p > 0 && p < 1, "normal_quantile: p must be in (0, 1), got " + std::to_string(p));
  return quantile_or_infinity(boost::math::normal(), p);
}

// ---- descriptive ---------------------------------------------------------------------------------------

double mean(const std::vector<double>& x) {
  require_size(x, 1, "mean", "x");
  return sum_of(x) / static_cast<double>(x.size());
}

double sample_sd(const std::vector<double>& x) {
  require_size(x, 2, "sample_sd", "x");
  return std::sqrt(squared_deviations(x) / static_cast<double>(x.size() - 1));
}

double quantile(std::vector<double> x, double q) {
  require_size(x, 1, "quantile", "x");
  require(q >= 0 && q <= 1, "quantile: q must be in [0, 1], got " + std::to_string(q));
  std::sort(x.begin(), x.end());
  const double h = (static_cast<double>(x.size()) - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= x.size()) return x.back();
  return x[lo] + (h - static_cast<double>(lo)) * (x[lo + 1] - x[lo]);
}

Summary summarize(const std::vector<double>& x, double level) {
  require_size(x, 1, "summarize", "x");
  require_level(level, "summarize");
  Summary s;
  s.n = static_cast<int>(x.size());
  s.mean = mean(x);
  s.min = *std::min_element(x.begin(), x.end());
  s.max = *std::max_element(x.begin(), x.end());
  s.median = quantile(x, 0.5);
  s.ci_lo = s.ci_hi = s.mean;
  if (s.n >= 2) {
    s.sd = sample_sd(x);
    s.se = s.sd / std::sqrt(static_cast<double>(s.n));
    const double half = student_t_quantile(0.5 + level / 2, s.n - 1) * s.se;
    s.ci_lo = s.mean - half;
    s.ci_hi = s.mean + half;
  }
  return s;
}

// ---- two-sample tests ----------------------------------------------------------------------------------

TTestResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b, double level) {
  require_size(a, 2, "welch_t_test", "a");
  require_size(b, 2, "welch_t_test", "b");
  require_level(level, "welch_t_test");
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = squared_deviations(a) / (na - 1) / na, vb = squared_deviations(b) / (nb - 1) / nb;
  require(va + vb > 0, "welch_t_test: both samples are constant; the t statistic is undefined");
  TTestResult r;
  r.mean_a = mean(a);
  r.mean_b = mean(b);
  r.difference = r.mean_a - r.mean_b;
  const double se = std::sqrt(va + vb);
  r.t = r.difference / se;
  r.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  r.p = student_t_two_sided_p(r.t, r.df);
  const double half = student_t_quantile(0.5 + level / 2, r.df) * se;
  r.ci_lo = r.difference - half;
  r.ci_hi = r.difference + half;
  return r;
}

MannWhitneyResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  require_size(a, 1, "mann_whitney_u", "a");
  require_size(b, 1, "mann_whitney_u", "b");
  const size_t na = a.size(), nb = b.size(), n = na + nb;
  std::vector<std::pair<double, int>> all;  // value, group (0 = a)
  all.reserve(n);
  for (double v : a) all.push_back({v, 0});
  for (double v : b) all.push_back({v, 1});
  std::sort(all.begin(), all.end());
  double rank_sum_a = 0, tie_term = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && all[j].first == all[i].first) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1 … j
    for (size_t k = i; k < j; ++k)
      if (all[k].second == 0) rank_sum_a += average_rank;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  MannWhitneyResult r;
  const double dna = static_cast<double>(na), dnb = static_cast<double>(nb), dn = static_cast<double>(n);
  r.u_a = rank_sum_a - dna * (dna + 1) / 2;
  r.u_b = dna * dnb - r.u_a;
  r.rank_biserial = 2 * r.u_a / (dna * dnb) - 1;
  const double mu = dna * dnb / 2;
  const double variance = n > 1 ? dna * dnb / 12 * ((dn + 1) - tie_term / (dn * (dn - 1))) : 0;
  if (variance <= 0) return r;  // every value tied: no evidence either way (z = 0, p = 1)
  const double d = r.u_a - mu;
  r.z = (d > 0 ? 1 : -1) * std::max(std::fabs(d) - 0.5, 0.0) / std::sqrt(variance);
  r.p = std::min(1.0, std::erfc(std::fabs(r.z) / std::sqrt(2.0)));
  return r;
}

double cohens_d(const std::vector<double>& a, const std::vector<double>& b) {
  require_size(a, 2, "cohens_d", "a");
  require_size(b, 2, "cohens_d", "b");
  const double df = static_cast<double>(a.size() + b.size() - 2);
  const double pooled = std::sqrt((squared_deviations(a) + squared_deviations(b)) / df);
  require(pooled > 0, "cohens_d: both samples are constant; the effect size is undefined");
  return (mean(a) - mean(b)) / pooled;
}

double hedges_g(const std::vector<double>& a, const std::vector<double>& b) {
  const double d = cohens_d(a, b);
  const double df = static_cast<double>(a.size() + b.size() - 2);
  const double j = std::exp(std::lgamma(df / 2) - std::lgamma((df - 1) / 2)) / std::sqrt(df / 2);
  return j * d;
}

BootstrapResult bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b, int resamples,
                                          double level, uint64_t seed) {
  require_size(a, 2, "bootstrap_mean_difference", "a");
  require_size(b, 2, "bootstrap_mean_difference", "b");
  require_level(level, "bootstrap_mean_difference");
  require(resamples >= 100,
          "bootstrap_mean_difference: needs at least 100 resamples, got " + std::to_string(resamples));
  std::mt19937_64 rng(seed);
  auto resampled_mean = [&rng](const std::vector<double>& x) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += x[draw_below(rng, x.size())];
    return s / static_cast<double>(x.size());
  };
  std::vector<double> differences(static_cast<size_t>(resamples));
  for (double& d : differences) {
    const double ma = resampled_mean(a);
    d = ma - resampled_mean(b);
  }
  BootstrapResult r;
  r.estimate = mean(a) - mean(b);
  r.resamples = resamples;
  r.ci_lo = quantile(differences, 0.5 - level / 2);
  r.ci_hi = quantile(std::move(differences), 0.5 + level / 2);
  return r;
}

PermutationResult permutation_test(const std::vector<double>& a, const std::vector<double>& b, int max_permutations,
                                   uint64_t seed) {
  require_size(a, 1, "permutation_test", "a");
  require_size(b, 1, "permutation_test", "b");
  require(max_permutations >= 100,
          "permutation_test: needs at least 100 permutations, got " + std::to_string(max_permutations));
  std::vector<double> pooled(a);
  pooled.insert(pooled.end(), b.begin(), b.end());
  const int na = static_cast<int>(a.size()), n = static_cast<int>(pooled.size());
  const double total = sum_of(pooled), nb = static_cast<double>(b.size());
  auto difference = [&](double sum_a) { return sum_a / na - (total - sum_a) / nb; };
  PermutationResult r;
  r.difference = mean(a) - mean(b);
  // Relabellings whose difference equals the observed one up to rounding count as "at least as extreme".
  const double threshold = std::fabs(r.difference) * (1 - 1e-12) - 1e-12 * (std::fabs(total) + 1) / n;
  long long hits = 0;
  const double combinations = binomial_coefficient(n, na);
  if (combinations <= max_permutations) {
    std::vector<int> pick(static_cast<size_t>(na));
    std::iota(pick.begin(), pick.end(), 0);
    for (;;) {
      double s = 0;
      for (int i : pick) s += pooled[static_cast<size_t>(i)];
      if (std::fabs(difference(s)) >= threshold) ++hits;
      ++r.permutations;
      int i = na - 1;  // next combination in lexicographic order
      while (i >= 0 && pick[static_cast<size_t>(i)] == n - na + i) --i;
      if (i < 0) break;
      ++pick[static_cast<size_t>(i)];
      for (int k = i + 1; k < na; ++k) pick[static_cast<size_t>(k)] = pick[static_cast<size_t>(k - 1)] + 1;
    }
    r.exact = true;
    r.p = static_cast<double>(hits) / r.permutations;
    return r;
  }
  std::mt19937_64 rng(seed);
  std::vector<double> work(pooled);
  for (int p = 0; p < max_permutations; ++p) {
    double s = 0;
    for (int i = 0; i < na; ++i) {  // partial Fisher–Yates: the first na slots become a random subset
      const size_t j = static_cast<size_t>(i) + draw_below(rng, static_cast<uint64_t>(n - i));
      std::swap(work[static_cast<size_t>(i)], work[j]);
      s += work[static_cast<size_t>(i)];
    }
    if (std::fabs(difference(s)) >= threshold) ++hits;
  }
  r.permutations = max_permutations;
  r.p = static_cast<double>(hits + 1) / (max_permutations + 1);
  return r;
}

ProportionInterval wilson_interval(int successes, int n, double level) {
  require(n > 0 && successes >= 0 && successes <= n, "wilson_interval: needs 0 ≤ successes ≤ n and n > 0, got " +
                                                         std::to_string(successes) + " of " + std::to_string(n));
  require_level(level, "wilson_interval");
  const double z = normal_quantile(0.5 + level / 2), z2 = z * z, dn = n;
  const double p = successes / dn;
  const double centre = (p + z2 / (2 * dn)) / (1 + z2 / dn);
  const double half = z * std::sqrt(p * (1 - p) / dn + z2 / (4 * dn * dn)) / (1 + z2 / dn);
  ProportionInterval r;
  r.estimate = p;
  r.lo = std::max(0.0, centre - half);
  r.hi = std::min(1.0, centre + half);
  return r;
}

double fisher_exact_p(int a, int b, int c, int d) {
  require(a >= 0 && b >= 0 && c >= 0 && d >= 0, "fisher_exact_p: table counts must be ≥ 0");
  const int row1 = a + b, row2 = c + d, col1 = a + c, n = a + b + c + d;
  require(n > 0, "fisher_exact_p: the table is empty");
  // log P(top-left = x) for the hypergeometric distribution with these margins.
  auto log_choose = [](int m, int k) { return std::lgamma(m + 1.0) - std::lgamma(k + 1.0) - std::lgamma(m - k + 1.0); };
  auto log_p = [&](int x) { return log_choose(row1, x) + log_choose(row2, col1 - x) - log_choose(n, col1); };
  const double observed = log_p(a);
  double p = 0;
  for (int x = std::max(0, col1 - row2); x <= std::min(row1, col1); ++x) {
    const double lp = log_p(x);
    if (lp <= observed + 1e-7) p += std::exp(lp);  // relative tolerance for ties in probability
  }
  return std::min(1.0, p);
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    require(p[i] >= 0 && p[i] <= 1, "holm_adjust: p-value " + std::to_string(i) + " is not in [0, 1]");
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&p](size_t i, size_t j) { return p[i] < p[j]; });
  std::vector<double> adjusted(m);
  double running = 0;
  for (size_t k = 0; k < m; ++k) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - k) * p[order[k]]));
    adjusted[order[k]] = running;
  }
  return adjusted;
}

// ---- regression ----------------------------------------------------------------------------------------

LinearFit linear_fit(const std::vector<double>& x, const std::vector<double>& y, double level) {
  require(x.size() == y.size(),
          "linear_fit: x has " + std::to_string(x.size()) + " values but y has " + std::to_string(y.size()));
  require_size(x, 3, "linear_fit", "x");
  require_finite(y, "linear_fit", "y");
  require_level(level, "linear_fit");
  LinearFit f;
  f.n = static_cast<int>(x.size());
  const double mx = mean(x), my = mean(y);
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
    syy += (y[i] - my) * (y[i] - my);
  }
  require(sxx > 0, "linear_fit: all x values are equal; the slope is undefined");
  f.slope = sxy / sxx;
  f.intercept = my - f.slope * mx;
  double ssr = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = y[i] - (f.intercept + f.slope * x[i]);
    ssr += e * e;
  }
  const double df = f.n - 2;
  f.r2 = syy > 0 ? 1 - ssr / syy : 0;
  f.slope_se = std::sqrt(ssr / df / sxx);
  const double half = student_t_quantile(0.5 + level / 2, df) * f.slope_se;
  f.slope_ci_lo = f.slope - half;
  f.slope_ci_hi = f.slope + half;
  if (f.slope_se > 0)
    f.p = student_t_two_sided_p(f.slope / f.slope_se, df);
  else
    f.p = f.slope == 0 ? 1 : 0;  // a perfect fit
  return f;
}

}  // namespace vlascope
