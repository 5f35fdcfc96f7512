// bad_input
