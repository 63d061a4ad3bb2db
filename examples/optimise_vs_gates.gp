# examples/optimise_vs_gates.gp - the plots of docs/optimise_vs_gates.md,
# from the data files `optimise_vs_gates --report` writes:
#   gnuplot -e "dir='docs/optimise_vs_gates'" examples/optimise_vs_gates.gp
# solved.dat: a block per task and row (index task * 11 + row): T fraction
#   wilson_lo wilson_hi solved runs median_work
# curvature.dat: a block per row (tanh, lstm) and rate (0.001, 0.01), index
#   row * 2 + rate: step seeds eigH eigP loss 2/lr 38/lr (medians)
if (!exists("dir")) dir = "docs/optimise_vs_gates"
set terminal svg size 1100,460 font "sans,11" background rgb "white"
set datafile missing "nan"
set grid
rows = "tanh lstm gru orth irnn-le hf-ms tanh-id relu irnn hf hf-sparse"
tasks = "adding copy"

set output dir."/solved.svg"
set multiplot layout 1,2
set xlabel "sequence length T"
set ylabel "seeds solved / seeds"
set yrange [-0.05:1.05]
set key outside right top
do for [k=0:1] {
    set title word(tasks, k + 1)." task: fraction of seeds solved"
    plot for [i=1:6] dir."/solved.dat" index (k * 11 + i - 1) \
        using 1:2 with linespoints lw 2 pt i title word(rows, i), \
        for [i=7:11] dir."/solved.dat" index (k * 11 + i - 1) \
        using 1:2 with linespoints lw 2 pt i dt 2 title word(rows, i)
}
unset multiplot

set terminal svg size 1100,800 font "sans,11" background rgb "white"
set output dir."/curvature.svg"
set multiplot layout 2,2
set xlabel "Adam step"
set ylabel "|top eigenvalue| (median over seeds)"
set logscale y
set yrange [*:*]
set key inside top right
lrs = "0.001 0.01"
do for [c=0:1] {
    set title word("tanh lstm", c + 1).": Hessian H, against 2/lr" noenhanced
    plot for [j=0:1] dir."/curvature.dat" index (c * 2 + j) \
        using 1:(abs($3)) with linespoints lw 2 lc j + 1 \
        title "lr ".word(lrs, j + 1), \
        for [j=0:1] dir."/curvature.dat" index (c * 2 + j) \
        using 1:6 with lines dt 2 lc j + 1 title "2/lr"
    set title word("tanh lstm", c + 1).": P^-1/2 H P^-1/2 (Adam's), "\
        ."against 38/lr" noenhanced
    plot for [j=0:1] dir."/curvature.dat" index (c * 2 + j) \
        using 1:(abs($4)) with linespoints lw 2 lc j + 1 \
        title "lr ".word(lrs, j + 1), \
        for [j=0:1] dir."/curvature.dat" index (c * 2 + j) \
        using 1:7 with lines dt 2 lc j + 1 title "38/lr"
}
unset multiplot
