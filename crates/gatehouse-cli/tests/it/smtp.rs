// smtp
