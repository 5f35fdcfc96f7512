-- wrk script: POST the email-OTP password-reset request, emails cycling through
-- user0..user{N-1}@example.test (N from env USERS, default 1000; all seeded).
-- Each wrk thread starts at a different offset so connections don't all hit the same address.
-- Usage: wrk -t2 -c32 -d10s --latency -s otp.lua http://127.0.0.1:3999
local N = tonumber(os.getenv("USERS") or "1000")
local counter = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

function init(args)
  counter = offset or 0
end

wrk.method = "POST"
wrk.path = "/api/auth/email-otp/send-verification-otp"
wrk.headers["Content-Type"] = "application/json"

function request()
  local i = counter % N
  counter = counter + 1
  return wrk.format(nil, nil, nil,
    '{"email":"user' .. i .. '@example.test","type":"forget-password"}')
end

-- (wrk itself reports "Non-2xx or 3xx responses" when any occur)
