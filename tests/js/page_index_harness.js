// Runs the page's index rules (convforge.draw._page_js.INDEX_JS, path in argv[2]) on the cases read from stdin
// and prints, per case, the frames and sums the page would show, or the error it would report.
"use strict";
const fs = require("fs");
const CF = require(process.argv[2]);
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const out = cases.map(c => {
  try {
    const g = CF.geometry(c.config);
    const frs = CF.frames(g, c.view, "groups");
    return {
      outSizes: g.outSizes,
      frames: frs.map(f => [f.outChannel, f.inChannel, f.position,
                            f.cells.map(x => [x.inChannel, x.tap, x.position, x.kind, x.source])]),
      sums: frs.map(f => (f.view === "conv" ? CF.arithmetic(g, f).sum : null)),
    };
  } catch (e) {
    return {error: e.message};
  }
});
process.stdout.write(JSON.stringify(out));
