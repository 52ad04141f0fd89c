# Regenerates tests/evaluation/data/centers_reference.json, the known answer of the per-center
# AUC heterogeneity test in tests/evaluation/test_centers.py.
#
#   Rscript tests/evaluation/data/make_center_reference.R [OUTDIR]
#
# dcurves' df_binary (dcurves_df_binary.csv) split into three "centers" of 250 consecutive rows,
# pROC's aSAH s100b split by WFNS grade 1-2 / 3-5 (two centers), and a heterogeneous set of
# three: df_binary rows 1-250, aSAH s100b, df_binary rows 501-750 with the marker rounded to 1
# decimal (ties, a weaker score). Per center: pROC's AUC and
# DeLong variance; across centers: metafor's inverse-variance fixed-effect model (Cochran's Q, its
# p, I^2 and the pooled AUC with its SE) and the DerSimonian-Laird tau^2. Tested with R 4.2.2,
# pROC 1.18.0, metafor 3.8-1 (Debian r-cran-proc, r-cran-metafor).

suppressPackageStartupMessages({
  library(pROC)
  library(metafor)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))
outdir <- if (length(args)) args[1] else here

reference <- function(y, score, center) {
  centers <- unique(center)
  auc <- vi <- numeric(0)
  for (k in centers) {
    r <- roc(y[center == k], score[center == k], levels = c(0, 1), direction = "<", quiet = TRUE)
    auc <- c(auc, as.numeric(auc(r)))
    vi <- c(vi, var(r, method = "delong"))
  }
  fe <- rma(yi = auc, vi = vi, method = "FE")
  dl <- rma(yi = auc, vi = vi, method = "DL")
  list(centers = as.character(centers), auc = auc, variance = vi, Q = fe$QE, df = fe$k - 1,
       p = fe$QEp, I2 = fe$I2 / 100, pooled_auc = as.numeric(fe$beta), pooled_se = fe$se,
       tau2_dl = dl$tau2)
}

d <- read.csv(file.path(here, "dcurves_df_binary.csv"))
a <- read.csv(file.path(here, "asah.csv"))
out <- list(
  meta = list(generated_by = "tests/evaluation/data/make_center_reference.R", R = R.version.string,
              pROC = as.character(packageVersion("pROC")),
              metafor = as.character(packageVersion("metafor"))),
  dcurves_three_blocks = reference(d$cancer, d$cancerpredmarker,
                                   rep(c("A", "B", "C"), each = 250)),
  asah_by_wfns = reference(a$poor_outcome, a$s100b, ifelse(a$wfns <= 2, "wfns1-2", "wfns3-5")),
  heterogeneous = reference(c(d$cancer[1:250], a$poor_outcome, d$cancer[501:750]),
                            c(d$cancerpredmarker[1:250], a$s100b, round(d$cancerpredmarker[501:750], 1)),
                            rep(c("dcurves_1", "asah_s100b", "dcurves_3_rounded"), c(250, nrow(a), 250)))
)
write_json(out, file.path(outdir, "centers_reference.json"), digits = I(17), auto_unbox = TRUE,
           pretty = TRUE)
