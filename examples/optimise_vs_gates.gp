# examples/optimise_vs_gates.gp - the plots of docs/optimise_vs_gates.md,
# from the data files `optimise_vs_gates --report` writes:
#   gnuplot -e "dir='docs/optimise_vs_gates'" examples/optimise_vs_gates.gp
if (!exists("dir")) dir = "docs/optimise_vs_gates"
set terminal svg size 1000,420 font "sans,11" background rgb "white"
set datafile missing "nan"
set grid
rows = "tanh irnn orth hf lstm gru"
titles = "tanh_Adam IRNN_Adam orthogonal_tanh_Adam tanh_Hessian-free LSTM_Adam GRU_Adam"
title(i) = system(sprintf("echo %s | cut -d' ' -f%d | tr _ ' '", titles, i))

set output dir."/solved.svg"
set multiplot layout 1,2
set title "adding problem: fraction of seeds solved"
unset key
set xlabel "sequence length T"
set ylabel "solved / seeds"
set yrange [-0.05:1.05]
plot for [i=1:6] dir."/solved.dat" using 1:(column(2*i)) with linespoints lw 2 pt i title title(i)
set title "median training time to solve (solved runs)"
set key bottom right box opaque
set ylabel "seconds"
set logscale y
set yrange [*:*]
plot for [i=1:6] dir."/solved.dat" using 1:(column(2*i+1)) with linespoints lw 2 pt i title title(i)
unset multiplot
unset logscale y

set output dir."/curvature.svg"
set multiplot layout 1,2
set xlabel "distance from the initial parameters |theta - theta_0|"
set title "top Hessian eigenvalue (largest magnitude), fixed batch"
set key top right box opaque
set ylabel "eigenvalue"
plot dir."/curvature.dat" using 4:(strcol(1) eq "tanh" ? $6 : 1/0) with linespoints lw 2 pt 1 title "tanh RNN", \
     dir."/curvature.dat" using 4:(strcol(1) eq "lstm" ? $6 : 1/0) with linespoints lw 2 pt 5 title "LSTM"
set title "gradient norm, same batch"
set ylabel "|grad|"
set logscale y
plot dir."/curvature.dat" using 4:(strcol(1) eq "tanh" ? $5 : 1/0) with linespoints lw 2 pt 1 title "tanh RNN", \
     dir."/curvature.dat" using 4:(strcol(1) eq "lstm" ? $5 : 1/0) with linespoints lw 2 pt 5 title "LSTM"
unset multiplot
