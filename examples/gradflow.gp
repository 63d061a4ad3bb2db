# examples/gradflow.gp - draws build/gradflow_data/*.dat (made by build/gradflow)
#   gnuplot -e "dir='build/gradflow_data'" examples/gradflow.gp  -> dir/gradflow.svg
if (!exists("dir")) dir = 'build/gradflow_data'
set terminal svg size 960,420 font "sans,11" background rgb "white"
set output dir.'/gradflow.svg'
set multiplot layout 1,2
set logscale y
set format y "10^{%L}"
set xlabel "distance from the loss, T-1-t (steps back)"
set ylabel "||dL/dh_t||"
set key bottom left font ",9"
set grid
set title "Gradient reaching h_t (dashed: init, solid: trained)"
plot dir.'/rnn_init.dat'     w l dt 2 lw 2 lc rgb "#d62728" t "rnn init", \
     dir.'/rnn_trained.dat'  w l dt 1 lw 2 lc rgb "#d62728" t "rnn trained", \
     dir.'/lstm_init.dat'    w l dt 2 lw 2 lc rgb "#1f77b4" t "lstm init", \
     dir.'/lstm_trained.dat' w l dt 1 lw 2 lc rgb "#1f77b4" t "lstm trained", \
     dir.'/gru_init.dat'     w l dt 2 lw 2 lc rgb "#2ca02c" t "gru init", \
     dir.'/gru_trained.dat'  w l dt 1 lw 2 lc rgb "#2ca02c" t "gru trained"
set title "Plain RNN: small vs large W_{hh} (exploding)"
set key top left
# (no "~" in the titles: in enhanced text it overprints the characters
# around it, which garbled this legend)
plot dir.'/rnn_init.dat'    w l dt 2 lw 2 lc rgb "#d62728" t "W_{hh} from U(±1/sqrt(H)) (init)", \
     dir.'/rnn_explode.dat' w l dt 1 lw 2 lc rgb "#9467bd" t "W_{hh} from N(0, 3/sqrt(H))"
unset multiplot
