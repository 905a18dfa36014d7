import { HttpServer } from "@effect/platform"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import { TestApp } from "../fixtures/Http.js"

// A suite whose client left a request open ends anyway: the test server closes the
// connections still open when the API has stopped, so the listener's close does not wait
// for a request nobody will answer (it held the suite to the hook's time limit).
layer(TestApp, { excludeTestServices: true, timeout: "30 seconds" })("a suite's end", (it) => {
  it.effect("a request still being sent when the suite ends does not hold its end", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const socket = net.connect(port, "127.0.0.1")
      yield* Effect.async<void, Error>((resume) => {
        socket.once("connect", () => resume(Effect.void))
        socket.once("error", (error) => resume(Effect.fail(error)))
      })
      // Reset by the test server at the suite's end.
      socket.on("error", () => {})
      // The headers and the first byte of a body of 100: the API waits for the rest, and Node
      // would keep the request open for 300 s (its `requestTimeout`).
      socket.write(
        "POST /api/v1/tickets HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
      )
      yield* Effect.sleep("200 millis")
      expect(socket.destroyed).toBe(false)
      // What this proves comes after: the suite's end (the layer's hook) within its 30 s.
    }))
})
