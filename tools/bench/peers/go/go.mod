module urt/tools/bench/peers/go

go 1.19
