// Shared better-auth setup for the peer server (server.mjs) and the seeder (seed.mjs).
// Kept as close to better-auth's documented SQLite + email-OTP setup as possible:
// a better-sqlite3 Database handed straight to `database` (better-auth wraps it in
// Kysely's SqliteDialect), WAL (see below), default email-OTP options (6 digits,
// 300 s expiry, OTP stored "plain").
import { join } from "node:path";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { emailOTP } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";

export const PORT = Number(process.env.PORT ?? 3999);
// DB: explicit file path; otherwise ./peer.db inside $PEER_DATA_DIR (default: cwd).
export const DB_PATH = process.env.DB ?? join(process.env.PEER_DATA_DIR ?? ".", "peer.db");
export const PASSWORD = "Secret-Passw0rd!";

export function makeOptions() {
  const database = new Database(DB_PATH);
  // Default: WAL + synchronous=NORMAL, the same durability settings Gatehouse's
  // SQLite store uses (crates/gatehouse-store/src/open.rs), so the comparison is
  // like for like. SQLITE_WAL=0 keeps better-sqlite3's defaults instead (rollback
  // journal, synchronous=FULL, what better-auth's docs snippet gets): every OTP
  // request then waits for fsyncs and the rate drops ~10x.
  if (process.env.SQLITE_WAL !== "0") {
    database.pragma("journal_mode = WAL");
    database.pragma("synchronous = NORMAL");
  }
  return {
    database,
    secret: "gatehouse-peer-benchmark-secret-0123456789abcdef", // fixed, >= 32 chars
    baseURL: `http://127.0.0.1:${PORT}`,
    emailAndPassword: { enabled: true },
    // Measure the work, not better-auth's limiter (the email-OTP plugin would
    // otherwise allow 3 requests / 60 s per IP on send-verification-otp).
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    plugins: [
      emailOTP({
        // "Sends nothing": the hook that would hand the OTP to a mailer just
        // returns. The OTP is still generated and stored by better-auth.
        async sendVerificationOTP(_data) {
          return;
        },
      }),
    ],
  };
}

// Create better-auth's tables (user, session, account, verification) if missing,
// using better-auth's own migration planner (same as `npx @better-auth/cli migrate`,
// but offline and without the CLI package).
export async function createAuth() {
  const options = makeOptions();
  const { runMigrations } = await getMigrations(options);
  await runMigrations();
  return { auth: betterAuth(options), database: options.database };
}
