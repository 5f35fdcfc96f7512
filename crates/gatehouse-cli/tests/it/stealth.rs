// stealth
