"""Per-example cost of the two benchmark shards (reference, seed 7, 1000 examples): where the imbalance is."""
import sys, time, pathlib, statistics, tempfile, collections
sys.path.insert(0, ".")
from pytest_fcp.fuzz import search
from pytest_fcp.fuzz.database import shard_examples, shard_seed
from pytest_fcp.plugin.fuzz_items import coverage_cells
engine = sys.argv[1] if len(sys.argv) > 1 else "reference"
total = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
real = search._run_in
log = []
def timed(tmp, scenario, factory, seed, cells):
    t = time.perf_counter(); out = real(tmp, scenario, factory, seed, cells); d = time.perf_counter() - t
    days = sum(len(r.days) if hasattr(r, "days") else 1 for r in scenario.requests) if hasattr(scenario, "requests") else 0
    log.append((d, scenario.interval, days, search.render_scenario(scenario).count("\n")))
    return out
search._run_in = timed
import os
if os.environ.get("NO_TARGET"):
    from hypothesis import Phase
    real_settings = search.settings
    def no_target(*a, **kw):
        kw["phases"] = [p for p in kw.get("phases", ()) if p is not Phase.target]
        return real_settings(*a, **kw)
    search.settings = no_target
root = pathlib.Path(tempfile.mkdtemp(dir="/work/wt/checks/.probe_tmp"))
for k in [int(x) for x in (sys.argv[3].split(',') if len(sys.argv) > 3 else ['1', '2'])]:
    log.clear(); t = time.perf_counter(); c0 = time.process_time()
    r = search.fuzz_engine(engine, examples=shard_examples(total, k, 2), seed_value=7, search_seed=shard_seed(7, k, 2),
                           name=engine, shard=(k, 2), workdir=root / str(k), cells=coverage_cells(), judge=False)
    wall = time.perf_counter() - t; cpu = time.process_time() - c0
    ds = sorted(x[0] for x in log)
    inrun = sum(ds)
    print(f"shard {k}: {r.examples} examples, {r.cells} cells, wall {wall:.1f}s cpu {cpu:.1f}s, inside runs {inrun:.1f}s, outside {wall-inrun:.1f}s; "
          f"median {statistics.median(ds)*1000:.0f} ms, p90 {ds[int(.9*len(ds))]*1000:.0f} ms, max {ds[-1]*1000:.0f} ms, top10 sum {sum(ds[-10:]):.1f}s")
    by = collections.defaultdict(list)
    for d, iv, *_ in log: by[iv].append(d)
    print("   by interval:", {iv: (len(v), round(sum(v), 1)) for iv, v in sorted(by.items(), key=lambda kv: -sum(kv[1]))})
    top = sorted(log, reverse=True)[:5]
    print("   slowest:", [(round(d, 2), iv) for d, iv, *_ in top])
