// restart
