// Peer server: better-auth + email-OTP on SQLite, for Gatehouse's benchmark.
// ONE Node process, no cluster module -- as in the earlier measurement
// (better-auth's OTP request rate on this 2-core machine was taken that way).
import http from "node:http";
import { toNodeHandler } from "better-auth/node";
import { createAuth, PORT, DB_PATH } from "./auth.mjs";

const { auth } = await createAuth();
const server = http.createServer(toNodeHandler(auth)); // everything under /api/auth/*

server.listen(PORT, "127.0.0.1", () => {
  console.error(`better-auth peer: db=${DB_PATH}`);
  console.log(`listening on ${PORT}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
