# Regenerates the val.prob reference fixtures of tests/evaluation/test_calibration.py.
#
#   Rscript tests/evaluation/data/make_rms_reference.R [OUTDIR]
#
# Writes OUTDIR/valprob_datasets.csv (dataset, y, p; p printed with 17 significant digits so
# Python reads the same doubles) and OUTDIR/valprob_reference.json (per data set: rms::val.prob's
# statistics, converged glm() recalibration fits with SEs, Hmisc::somers2 and the
# Hosmer-Lemeshow test with ResourceSelection::hoslem.test's grouping). OUTDIR defaults to the
# folder of this script. Non-finite numbers are written as the strings "NA", "NaN", "Inf". Needs R with rms (Debian: r-base-core r-cran-rms); tested with
# R 4.2, rms 6.5.0, Hmisc 4.8.0.

suppressPackageStartupMessages({
  library(rms)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))
outdir <- if (length(args)) args[1] else here
dcurves <- read.csv(file.path(here, "dcurves_df_binary.csv"))

set.seed(20261201)
datasets <- list()

# 1. a well-specified logistic model, n = 400, continuous risks
x <- rnorm(400)
datasets$logistic_400 <- list(y = rbinom(400, 1, plogis(-0.4 + 1.2 * x)), p = plogis(-0.4 + 1.2 * x))

# 2. a 5-nearest-neighbour model: risks on a 0.2 grid (heavy ties), exactly 0 and 1 included,
#    with an event at p = 0 and a non-event at p = 1
p <- sample(c(0, 0.2, 0.4, 0.6, 0.8, 1), 150, replace = TRUE, prob = c(.15, .15, .2, .2, .15, .15))
y <- rbinom(150, 1, pmin(pmax(p, 0.1), 0.9))
y[which(p == 0)[1]] <- 1
y[which(p == 1)[1]] <- 0
datasets$knn_ties_0_1 <- list(y = y, p = p)

# 3. small n = 25, risks overestimated by one logit
x <- rnorm(25)
datasets$small_n25 <- list(y = rbinom(25, 1, plogis(-0.3 + x)), p = plogis(0.7 + x))

# 4. an overfitted model: predictions twice too extreme, rounded to 2 decimals (ties)
x <- rnorm(200)
datasets$overfit_rounded <- list(y = rbinom(200, 1, plogis(0.2 + 0.8 * x)),
                                 p = round(plogis(0.2 + 1.6 * x), 2))

# 5. a tree: four leaf risks plus a pure leaf (p = 1), n = 60
leaf <- sample(1:5, 60, replace = TRUE)
p <- c(0.1, 0.3, 0.55, 0.8, 1)[leaf]
y <- rbinom(60, 1, c(0.15, 0.3, 0.5, 0.75, 0.95)[leaf])
datasets$tree_leaves <- list(y = y, p = p)

# 6. dcurves' df_binary (750 patients, a marker-based risk), real data
datasets$dcurves_df_binary <- list(y = dcurves$cancer, p = dcurves$cancerpredmarker)

# 7. small n = 40 with near-separation, where the IRLS stopping rule matters for the SEs
x <- rnorm(40, sd = 3)
datasets$near_separation_n40 <- list(y = rbinom(40, 1, plogis(0.5 + 2.5 * x)), p = plogis(x))

# Hosmer-Lemeshow with ResourceSelection::hoslem.test's grouping (quantile cut points, type 7,
# include.lowest); df = groups formed - 2 (hoslem.test keeps g - 2 when ties merge groups). A cell
# with 0 expected and 0 observed (a group of p = 0 or p = 1) adds 0; 0 expected and some observed
# adds Inf (hoslem.test returns NaN for both).
hoslem <- function(y, p, g = 10) {
  cuts <- unique(quantile(p, probs = seq(0, 1, 1 / g)))
  grp <- cut(p, breaks = cuts, include.lowest = TRUE)
  obs <- xtabs(cbind(1 - y, y) ~ grp)
  expect <- xtabs(cbind(1 - p, p) ~ grp)
  keep <- rowSums(obs) > 0
  terms <- (obs[keep, ] - expect[keep, ])^2 / expect[keep, ]
  terms[obs[keep, ] == expect[keep, ]] <- 0
  chisq <- sum(terms)
  ngroups <- sum(keep)
  list(chisq = chisq, groups = ngroups, df = ngroups - 2, p = 1 - pchisq(chisq, ngroups - 2))
}

glm_fits <- function(y, p) {
  i <- p > 0 & p < 1
  lp <- qlogis(p[i])
  ctl <- glm.control(epsilon = 1e-14, maxit = 100)
  joint <- summary(glm(y[i] ~ lp, family = binomial, control = ctl))$coefficients
  citl <- summary(glm(y[i] ~ 1, offset = lp, family = binomial, control = ctl))$coefficients
  list(citl = citl[1, 1], citl_se = citl[1, 2], intercept = joint[1, 1], intercept_se = joint[1, 2],
       slope = joint[2, 1], slope_se = joint[2, 2], n_used = sum(i), n_excluded = sum(!i))
}

reference <- list()
rows <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  v <- suppressWarnings(val.prob(d$p, d$y, pl = FALSE))
  s <- somers2(d$p, d$y)
  reference[[name]] <- list(
    n = length(d$y),
    val_prob = as.list(setNames(unname(v), names(v))),
    glm = glm_fits(d$y, d$p),
    somers2 = list(C = unname(s["C"]), Dxy = unname(s["Dxy"])),
    hosmer_lemeshow = hoslem(d$y, d$p),
    lowess_errors = abs(d$p - approx(lowess(d$p, d$y, iter = 0), xout = d$p, ties = mean)$y)
  )
  rows[[name]] <- data.frame(dataset = name, y = d$y, p = sprintf("%.17g", d$p))
}
write.csv(do.call(rbind, rows), file.path(outdir, "valprob_datasets.csv"), row.names = FALSE,
          quote = FALSE)
meta <- list(generated_by = "tests/evaluation/data/make_rms_reference.R",
             R = R.version.string, rms = as.character(packageVersion("rms")),
             Hmisc = as.character(packageVersion("Hmisc")))
write_json(list(meta = meta, datasets = reference), file.path(outdir, "valprob_reference.json"),
           digits = I(17), auto_unbox = TRUE, pretty = TRUE, na = "string")
