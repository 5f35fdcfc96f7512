// password_policy
