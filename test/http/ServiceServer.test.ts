import { describe, expect, it } from "@effect/vitest"
import type * as http from "node:http"
import { Agent, request } from "node:http"
import type { AddressInfo } from "node:net"
import { ServiceServer } from "../../src/http/ServiceServer.js"
import { rawRequest } from "../fixtures/RawHttp.js"

const listening = async (server: ServiceServer) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as AddressInfo).port
}

const closed = async (server: ServiceServer) => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

describe("ServiceServer", () => {
  it("answers 503 with Retry-After until the API's handler is attached, then only the handler answers", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    try {
      const starting = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(starting.status).toBe(503)
      expect(starting.headers["content-type"]).toBe("application/json")
      expect(starting.headers["retry-after"]).toBe("1")
      expect(JSON.parse(starting.body)).toEqual({ error: "the service is starting" })

      server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => response.end("ready"))
      const ready = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(ready.status).toBe(200)
      expect(ready.body).toBe("ready")
    } finally {
      await closed(server)
    }
  })

  it("draining answers what is in flight, refuses new requests with 503 and Connection: close, then closes", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    const held: Array<http.ServerResponse> = []
    const handler = (request: http.IncomingMessage, response: http.ServerResponse) =>
      request.url === "/slow" ? held.push(response) : response.end("ok")
    server.on("request", handler)
    const agent = new Agent({ keepAlive: true, maxSockets: 2 })
    const get = (path: string) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) =>
        request({ host: "127.0.0.1", port, path, agent }, (response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk.toString()))
          response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
        }).on("error", reject).end())
    try {
      // Two open keep-alive connections: one will carry a slow request, the other a new one.
      await Promise.all([get("/warm"), get("/warm")])
      const inFlight = get("/slow")
      while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      const drained = server.drain(10_000)

      const refused = await get("/api/v1/concerts")
      expect(refused.status).toBe(503)
      expect(refused.headers.connection).toBe("close")
      expect(refused.headers["retry-after"]).toBe("1")
      expect(JSON.parse(refused.body)).toEqual({ error: "the service is shutting down; retry" })
      // A new connection too, until the listener closes.
      expect((await rawRequest(port, "GET", "/api/v1/concerts")).status).toBe(503)

      // The API detaching its handler while draining changes nothing for clients.
      server.off("request", handler)
      held[0]!.end("done")
      const answered = await inFlight
      expect(answered.body).toBe("done")
      // The answer in flight closes its connection too: the client reconnects elsewhere.
      expect(answered.headers.connection).toBe("close")
      expect(await drained).toBe(0)
      // Then nothing listens: a client is refused before it sends anything.
      await expect(rawRequest(port, "GET", "/api/v1/concerts")).rejects.toMatchObject({ code: "ECONNREFUSED" })
    } finally {
      agent.destroy()
      server.closeAllConnections()
    }
  })

  it("stops waiting for requests that outlast the drain timeout", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    server.on("request", () => undefined)
    try {
      const pending = rawRequest(port, "GET", "/never").catch(() => undefined)
      while (server.requestsInFlight === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      expect(await server.drain(50)).toBe(1)
      await pending
    } finally {
      server.closeAllConnections()
    }
  })
})
