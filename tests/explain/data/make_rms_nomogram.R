# Reference nomogram points from R's rms for tests/explain/test_nomogram.py.
#
# Run from the repository root:  Rscript tests/explain/data/make_rms_nomogram.R
# Reads tests/explain/data/nomogram_cohort.csv (age, birads 2-5, y) and writes
# tests/explain/data/rms_nomogram_points.csv: the points rms::nomogram gives each BI-RADS level
# and each age tick, for two unpenalised logistic models fitted with lrm:
#   "factor":  y ~ age + birads, birads a factor (reference level 2; one coefficient per level);
#   "ordinal": y ~ age + birads_code, birads_code = 0, 1, 2, 3 for BI-RADS 2, 3, 4, 5 (one slope).
# The age axis spans the data's minimum to maximum (as sonorad's nomogram does), so both tools
# scale the widest predictor to the same 0-100 points.
suppressPackageStartupMessages(library(rms))

d <- read.csv("tests/explain/data/nomogram_cohort.csv")
d$birads_f <- factor(d$birads, levels = c(2, 3, 4, 5))
d$birads_code <- d$birads - 2
dd <- datadist(d)
dd$limits["Low:prediction", "age"] <- min(d$age)
dd$limits["High:prediction", "age"] <- max(d$age)
options(datadist = "dd")
age_ticks <- sort(unique(c(min(d$age), seq(30, 70, by = 10), max(d$age))))

rows <- list()
collect <- function(model_name, nom, birads_var, birads_values) {
  age <- nom$age
  rows[[length(rows) + 1]] <<- data.frame(model = model_name, predictor = "age",
                                          value = as.character(age$age), points = age$points)
  b <- nom[[birads_var]]
  rows[[length(rows) + 1]] <<- data.frame(model = model_name, predictor = "birads",
                                          value = as.character(birads_values), points = b$points)
}

fit_f <- lrm(y ~ age + birads_f, data = d)
nom_f <- nomogram(fit_f, age = age_ticks, birads_f = c("2", "3", "4", "5"))
collect("factor", nom_f, "birads_f", c(2, 3, 4, 5))

fit_o <- lrm(y ~ age + birads_code, data = d)
nom_o <- nomogram(fit_o, age = age_ticks, birads_code = 0:3)
collect("ordinal", nom_o, "birads_code", c(2, 3, 4, 5))

out <- do.call(rbind, rows)
write.csv(out, "tests/explain/data/rms_nomogram_points.csv", row.names = FALSE, quote = FALSE)
print(out, digits = 10)
