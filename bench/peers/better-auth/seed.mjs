// Seed USERS users (default 1000): user{i}@example.test / Secret-Passw0rd!
//
// Fast path: the password is hashed ONCE with better-auth's own hashPassword
// (scrypt, "salt:key" hex) and that hash is reused for every user, which is
// fine for an OTP-request benchmark (the measured call never checks it).
// Rows go in through better-auth's internal adapter (createUser + linkAccount,
// providerId "credential"), i.e. exactly the rows signUpEmail would write,
// with better-auth's own id/date encoding, minus N scrypt runs.
// Existing user/account/session/verification rows are wiped first, so each
// run starts from the same state.
import { hashPassword } from "better-auth/crypto";
import { createAuth, DB_PATH, PASSWORD } from "./auth.mjs";

const N = Number(process.env.USERS ?? 1000);
const { auth, database } = await createAuth();
const ctx = await auth.$context;
// Seed-only speed-up: no fsync per insert on THIS connection (per-connection
// pragma; the server's own connection keeps the driver defaults).
database.pragma("synchronous = OFF");

for (const t of ["session", "account", "verification", "user"]) database.prepare(`DELETE FROM "${t}"`).run();

const hash = await hashPassword(PASSWORD);
const t0 = Date.now();
for (let i = 0; i < N; i++) {
  const user = await ctx.internalAdapter.createUser({
    email: `user${i}@example.test`,
    name: `user${i}`,
    emailVerified: true,
  });
  await ctx.internalAdapter.linkAccount({
    userId: user.id,
    providerId: "credential",
    accountId: user.id,
    password: hash,
  });
}

// Sanity check: better-auth itself accepts a seeded credential.
if (N > 0) {
  const r = await auth.api.signInEmail({ body: { email: "user0@example.test", password: PASSWORD } });
  if (!r?.user) throw new Error("seeded user cannot sign in");
  database.prepare(`DELETE FROM "session"`).run();
}
const n = database.prepare(`SELECT count(*) AS n FROM "user"`).get().n;
console.log(`seeded ${n} users into ${DB_PATH} in ${Date.now() - t0} ms`);
database.close();
