// Statistics for experiments that compare conditions (steering vs baseline, frozen vs unfrozen VLM):
// descriptive summaries with t-based confidence intervals, Welch's t-test, Mann–Whitney U, effect sizes,
// seeded bootstrap and permutation tests, Holm's correction for several comparisons, and a simple linear
// regression for α dose–response curves.
//
// Plain data in, plain structs out. Every function throws vlascope::Error on input it cannot use (too few
// samples, NaN, mismatched lengths), naming the function and what was wrong. Resampling is seeded and uses
// its own integer draws (not std::uniform_int_distribution, whose output differs between standard
// libraries), so the same seed gives the same interval on every machine.
#pragma once

#include <cstdint>
#include <vector>

namespace vlascope {

// ---- distributions -------------------------------------------------------------------------------------

// Regularised incomplete beta function I_x(a, b), a, b > 0, 0 ≤ x ≤ 1 (Boost.Math's ibeta).
double incomplete_beta(double a, double b, double x);
// Student-t cumulative distribution P(T ≤ t) with df > 0 degrees of freedom (df need not be an integer).
double student_t_cdf(double t, double df);
// Two-sided tail probability P(|T| ≥ |t|).
double student_t_two_sided_p(double t, double df);
// Inverse of student_t_cdf: the t with P(T ≤ t) = p, 0 < p < 1.
double student_t_quantile(double p, double df);
double normal_cdf(double z);
double normal_quantile(double p);  // 0 < p < 1

// ---- descriptive ---------------------------------------------------------------------------------------

struct Summary {
  int n = 0;
  double mean = 0;
  double sd = 0;                // sample standard deviation (n − 1); 0 when n = 1
  double se = 0;                // sd / √n
  double ci_lo = 0, ci_hi = 0;  // t-based confidence interval of the mean (= mean when n = 1)
  double min = 0, max = 0, median = 0;
};
// Needs at least one finite value. level is the confidence level (0.95 → 95%).
Summary summarize(const std::vector<double>& x, double level = 0.95);

double mean(const std::vector<double>& x);
double sample_sd(const std::vector<double>& x);  // n − 1 denominator; needs n ≥ 2
// Linear-interpolated quantile (type 7, as numpy's default), 0 ≤ q ≤ 1.
double quantile(std::vector<double> x, double q);

// ---- two-sample tests ----------------------------------------------------------------------------------

struct TTestResult {
  double mean_a = 0, mean_b = 0;
  double difference = 0;  // mean_a − mean_b
  double t = 0;
  double df = 0;                // Welch–Satterthwaite degrees of freedom
  double p = 1;                 // two-sided
  double ci_lo = 0, ci_hi = 0;  // confidence interval of the difference (Welch)
};
// Welch's unequal-variance t-test of mean(a) vs mean(b); each sample needs n ≥ 2 and they may not both be
// constant.
TTestResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b, double level = 0.95);

struct MannWhitneyResult {
  double u_a = 0;            // U statistic of sample a: #pairs with a > b, plus half the ties
  double u_b = 0;            // n_a·n_b − u_a
  double z = 0;              // normal approximation, tie-corrected variance, continuity correction 0.5
  double p = 1;              // two-sided
  double rank_biserial = 0;  // 2·u_a/(n_a·n_b) − 1 ∈ [−1, 1]: + when a tends to be larger
};
MannWhitneyResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);

// Cohen's d with the pooled standard deviation: (mean_a − mean_b) / s_pooled. Needs n ≥ 2 per sample.
double cohens_d(const std::vector<double>& a, const std::vector<double>& b);
// Hedges' g: Cohen's d times the exact small-sample correction J(df) = Γ(df/2) / (√(df/2)·Γ((df−1)/2)),
// df = n_a + n_b − 2.
double hedges_g(const std::vector<double>& a, const std::vector<double>& b);

struct BootstrapResult {
  double estimate = 0;          // mean_a − mean_b on the data
  double ci_lo = 0, ci_hi = 0;  // percentile interval
  int resamples = 0;
};
// Percentile bootstrap of mean(a) − mean(b), resampling each group independently with replacement.
BootstrapResult bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                                          int resamples = 10000, double level = 0.95, uint64_t seed = 1);

struct PermutationResult {
  double difference = 0;  // observed mean_a − mean_b
  double p = 1;           // two-sided: share of relabellings with |diff| ≥ |observed|
  int permutations = 0;   // relabellings evaluated
  bool exact = false;     // true when every relabelling was enumerated
};
// Permutation test of the difference of means. When C(n_a + n_b, n_a) ≤ max_permutations every
// relabelling is enumerated (exact p); otherwise max_permutations random relabellings are drawn and
// p = (hits + 1) / (draws + 1).
PermutationResult permutation_test(const std::vector<double>& a, const std::vector<double>& b,
                                   int max_permutations = 20000, uint64_t seed = 1);

// ---- proportions (success rates) -----------------------------------------------------------------------

struct ProportionInterval {
  double estimate = 0;  // successes / n
  double lo = 0, hi = 0;
};
// Wilson score interval: well-behaved at 0/n and n/n, unlike the normal (Wald) interval.
ProportionInterval wilson_interval(int successes, int n, double level = 0.95);
// Fisher's exact test of a 2×2 table [[a, b], [c, d]] (rows: conditions; columns: success, failure).
// Two-sided: sums the probabilities of all tables with the same margins that are no more likely than the
// observed one.
double fisher_exact_p(int a, int b, int c, int d);

// Holm–Bonferroni step-down adjusted p-values, in the input order (monotone, capped at 1).
std::vector<double> holm_adjust(const std::vector<double>& p);

// ---- regression ----------------------------------------------------------------------------------------

struct LinearFit {
  int n = 0;
  double slope = 0, intercept = 0;
  double slope_se = 0;
  double slope_ci_lo = 0, slope_ci_hi = 0;  // t-based, n − 2 degrees of freedom
  double p = 1;                             // two-sided test of slope = 0
  double r2 = 0;
};
// Ordinary least squares y = intercept + slope·x. Needs n ≥ 3 and at least two distinct x.
LinearFit linear_fit(const std::vector<double>& x, const std::vector<double>& y, double level = 0.95);

}  // namespace vlascope
