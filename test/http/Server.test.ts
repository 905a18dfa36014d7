import { describe, expect, it } from "@effect/vitest"
import type { AddressInfo } from "node:net"
import { createStartingServer } from "../../src/http/Server.js"
import { rawRequest } from "../fixtures/RawHttp.js"

describe("createStartingServer", () => {
  it("answers 503 with Retry-After until the API's handler is attached, then only the handler answers", async () => {
    const server = createStartingServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as AddressInfo).port
    try {
      const starting = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(starting.status).toBe(503)
      expect(starting.headers["content-type"]).toBe("application/json")
      expect(starting.headers["retry-after"]).toBe("1")
      expect(JSON.parse(starting.body)).toEqual({ error: "the service is starting" })

      server.on("request", (_request, response) => response.end("ready"))
      const ready = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(ready.status).toBe(200)
      expect(ready.body).toBe("ready")
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
