import { describe, expect, it } from "@effect/vitest"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { geometry, renderSeating, renderSeatingBytes } from "../../src/workers/SeatingSvg.js"

const plan = (capacity: number, purchased: number) =>
  renderSeating({ concertId: "786d3bb4-a858-49ba-8803-15ffa2ec3678", name: "Bob \"on\" <Ice>", venue: "A & B", capacity, purchased })

const seats = (svg: string) => {
  const rects = [...svg.matchAll(/<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)" class="([sp])" \/>/g)]
  return rects.map(([, x, y, w, h, c]) => ({ x: Number(x), y: Number(y), size: Number(w), h: Number(h), sold: c === "p" }))
}

describe("renderSeating", () => {
  it("a 150,000-seat plan, written as bytes: every seat, the last rows' numbers whole, names in UTF-8", () => {
    const svg = renderSeating({
      concertId: "786d3bb4-a858-49ba-8803-15ffa2ec3678",
      name: "Çé ☃ on <Ice>",
      venue: "Zürich & Co",
      capacity: 150_000,
      purchased: 0,
      sold: Int32Array.of(1, 150_000),
      held: Int32Array.of(2)
    })
    expect(XMLValidator.validate(svg)).toBe(true)
    expect(svg).toContain(">Çé ☃ on &lt;Ice&gt;</text>")
    expect(svg).toContain(">Zürich &amp; Co</text>")
    const { height, perRow, size } = geometry(150_000)
    const drawn = [...svg.matchAll(/<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)" class="([sph])" \/>\n/g)]
    expect(drawn).toHaveLength(150_000)
    expect(drawn.map((m) => m[5]).join("").replace(/s/g, "")).toBe("php")
    // The last seat is on the last row, whose y is the widest number drawn.
    expect(Number(drawn.at(-1)![2])).toBe(240 + Math.floor((150_000 - 1) / perRow) * size)
    expect(Number(drawn.at(-1)![2])).toBeLessThan(height)
    expect(svg.endsWith("\" />\n</svg>\n")).toBe(true)
  })

  // Seat size and plan height worked out by hand from the spec's formulas: 20 px up to 1,000
  // seats, else floor(20 - ln(capacity)); height 250 + floor(capacity / floor(1000 / size)) * size + 50.
  it.each([
    [1, 0, 20, 300],
    [850, 300, 20, 640],
    [1000, 1000, 20, 700],
    [3000, 1234, 11, 663]
  ])("capacity %i with %i sold: seats of %i px, %i px high, one rect a seat", (capacity, purchased, size, height) => {
    const svg = plan(capacity, purchased)
    expect(XMLValidator.validate(svg)).toBe(true)
    const root = (new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(svg) as {
      svg: { width: string; height: string; desc: string; text: Array<{ "#text": string }> }
    }).svg
    expect(root.desc).toBe(`786d3bb4-a858-49ba-8803-15ffa2ec3678|${capacity}|${purchased}`)
    expect(root.width).toBe("1200")
    expect(Number(root.height)).toBe(height)
    const drawn = seats(svg)
    expect(drawn).toHaveLength(capacity)
    expect(drawn.filter((s) => s.sold)).toHaveLength(purchased)
    expect(drawn.slice(0, purchased).every((s) => s.sold)).toBe(true)
    expect(drawn.every((s) => s.size === size && s.h === size)).toBe(true)
    expect(new Set(drawn.map((s) => `${s.x},${s.y}`)).size).toBe(capacity)
    expect(drawn.every((s) => s.x >= 0 && s.x + size <= 1200 && s.y + size <= Number(root.height))).toBe(true)
    // The first seat sold is in the middle of the front row.
    expect(Math.abs(drawn[0]!.x + size / 2 - 600)).toBeLessThanOrEqual(size)
  })

  it("a 150,000-seat plan: the spec's geometry, every seat drawn, well under 11 MB", () => {
    const svg = plan(150_000, 70_000)
    // 8 px seats (floor(20 - ln 150,000) = floor(8.08)), 125 a row, 1,200 rows: 250 + 9,600 + 50.
    expect(geometry(150_000)).toMatchObject({ size: 8, perRow: 125, height: 9900 })
    expect(svg).toContain(`<svg width="1200" height="9900"`)
    expect(svg).toContain("<desc>786d3bb4-a858-49ba-8803-15ffa2ec3678|150000|70000</desc>")
    const drawn = seats(svg)
    expect(drawn).toHaveLength(150_000)
    expect(drawn.filter((s) => s.sold)).toHaveLength(70_000)
    expect(svg.length).toBeLessThan(11_000_000)
  })

  it("written into a reused buffer, a plan is byte for byte the one written into a new buffer, after a larger one too", () => {
    let buffer = new Uint8Array(0)
    const reused = (size: number) => {
      if (buffer.length < size) buffer = new Uint8Array(size)
      return buffer
    }
    const details = (capacity: number, purchased: number, name: string) =>
      ({ concertId: "786d3bb4-a858-49ba-8803-15ffa2ec3678", name, venue: "Hall", capacity, purchased })
    for (const [capacity, purchased, name] of [[150_000, 1_000, "Stadium"], [40, 7, "Club"], [3_000, 3_000, "Théâtre"]] as const) {
      const fresh = renderSeatingBytes(details(capacity, purchased, name))
      const inReused = renderSeatingBytes(details(capacity, purchased, name), reused)
      expect(inReused.buffer).toBe(buffer.buffer)
      expect(Buffer.from(inReused).equals(Buffer.from(fresh))).toBe(true)
    }
  })
})
