"""The HTML report's inline style sheet, script and legend (no network: the page opens from disk)."""

from __future__ import annotations

__all__ = ["CSS", "JS", "LEGEND"]

CSS = """
:root{--ok:#2e9d4f;--known:#9aa5b1;--chg:#e6a100;--new:#d7263d;--err:#4a4a4a;--s2:#2e9d4f;--s4:#f08a24;
--rl:#8e44ad;--s5:#d7263d;--sx:#111;--s3:#6c8ebf;font:14px/1.4 system-ui,sans-serif;color:#1d2329}
body{margin:0 18px 40px}[hidden]{display:none!important}h1{font-size:20px;margin:14px 0 4px}
h2{font-size:16px;margin:22px 0 6px}h3{font-size:14px;margin:4px 0}code,pre{font:12px/1.35 ui-monospace,monospace}
.meta{color:#52606d;font-size:12px}.chips span{display:inline-block;margin:2px 6px 2px 0}
.bar{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #d9e2ec;z-index:2}
.bar label{margin-right:12px}select{font:inherit}
table.m{border-collapse:collapse;margin-top:6px}table.m th,table.m td{border:1px solid #d9e2ec;padding:2px 8px;
text-align:left;white-space:nowrap}table.m th{background:#f0f4f8;position:sticky;top:38px}
tr.row{cursor:pointer}tr.row:hover td{filter:brightness(.95)}tr.row.open td.id{font-weight:600}
tr.row td.id::before{content:"\\25B8 ";color:#829ab1}tr.row.open td.id::before{content:"\\25BE "}
td.theme{color:#52606d}td.c{color:#fff;font-weight:600;font-size:12px}
.k-ok{background:var(--ok)}.k-known{background:var(--known)}.k-chg{background:var(--chg)}
.k-new{background:var(--new)}.k-err{background:var(--err)}.badge{color:#fff;padding:1px 6px;border-radius:8px;
font-size:12px}tr.flow>td{background:#fafcfe;padding:8px;white-space:normal}
section.t{border-left:4px solid #bcccdc;margin:6px 0 14px;padding:2px 10px}
.cols{display:flex;gap:14px;align-items:flex-start}.scroll{overflow-x:auto;max-width:min(1100px,62vw);
border:1px solid #e4e7eb;background:#fff}aside{flex:1;min-width:260px;font-size:12px}
aside ul{margin:2px 0 6px;padding-left:16px}.replay code{background:#fff3c4;padding:1px 4px}
table.d{border-collapse:collapse;margin:6px 10px 6px 0;font-size:12px;display:inline-table;vertical-align:top}
table.d th,table.d td{border:1px solid #e4e7eb;padding:1px 6px;white-space:nowrap}table.d caption{text-align:left;
font-weight:600}.cv{background:#e3f9e5}.cm{color:#829ab1}.cb{background:#ffe3e3}
svg.flow{display:block;font:10px sans-serif}svg .lane{stroke:#d9e2ec;stroke-width:1}svg .ln{fill:#52606d}
svg .tick{stroke:#bcccdc;stroke-dasharray:2 3}svg .tl{fill:#829ab1}
svg .path{fill:none;
stroke:#9fb3c8;stroke-width:1}svg .s2{fill:var(--s2)}svg .s4{fill:var(--s4)}svg .rl{fill:var(--rl)}
svg .s5{fill:var(--s5)}svg .sx{fill:var(--sx)}svg .s3{fill:var(--s3)}svg .ring{fill:none;stroke:#334e68;
stroke-width:1.5;stroke-dasharray:2 2}svg .cr{fill:#fff;stroke:#2680c2;stroke-width:2}svg .cw{fill:#2680c2}
svg .bad{stroke:var(--new);stroke-width:2}svg .cd{stroke:#52606d;stroke-width:2}svg .day{fill:#52606d;
text-anchor:middle}svg .flt{fill:#a61b29}svg .slp{fill:#bee3f8;opacity:.7}svg .st{fill:#2a4365}
svg .ok{fill:#c6f7d0;stroke:var(--ok)}svg .oe{fill:#ffd6d9;stroke:var(--new)}
svg .fetch{stroke:#334e68;stroke-dasharray:4 2}svg .fl{fill:#334e68}
svg .vio{stroke:var(--new);stroke-width:3}svg .note{fill:#a61b29}pre.log{max-height:220px;overflow:auto;
background:#f5f7fa;padding:4px}
"""

JS = """
(function(){
var q=function(s){return document.querySelector(s)},
qa=function(s){return Array.prototype.slice.call(document.querySelectorAll(s))};
function toggle(row){var f=document.getElementById(row.getAttribute('data-flow'));if(!f)return;f.hidden=!f.hidden;
row.classList.toggle('open',!f.hidden);row.setAttribute('aria-expanded',String(!f.hidden));}
qa('tr.row').forEach(function(r){r.addEventListener('click',function(){toggle(r)});
r.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();toggle(r);}});});
function apply(){var eng=q('#f-engine').value,theme=q('#f-theme').value,kind=q('#f-kind').value,shown=0,total=0;
qa('[data-engine]').forEach(function(el){el.hidden=eng!==''&&el.getAttribute('data-engine')!==eng;});
qa('tr.row').forEach(function(r){total++;var ok=theme===''||r.getAttribute('data-theme')===theme;
if(ok&&kind!==''){var cats=qa('#'+r.id+' td[data-cat]').filter(function(td){return !td.hidden})
.map(function(td){return td.getAttribute('data-cat')});ok=kind==='bad'?cats.some(function(c){return c!=='ok'}):
cats.indexOf(kind)>=0;}
r.hidden=!ok;var f=document.getElementById(r.getAttribute('data-flow'));
if(f&&!ok){f.hidden=true;r.classList.remove('open');}
if(ok)shown++;});q('#shown').textContent=shown+' of '+total+' rows shown';}
['#f-engine','#f-theme','#f-kind'].forEach(function(s){q(s).addEventListener('change',apply)});
q('#open-bad').addEventListener('click',function(){qa('tr.row').forEach(function(r){
var bad=qa('#'+r.id+' td[data-cat]').some(function(td){return !td.hidden&&td.getAttribute('data-cat')!=='ok'});
var f=document.getElementById(r.getAttribute('data-flow'));if(bad&&!r.hidden&&f&&f.hidden)toggle(r);});});
apply();document.body.setAttribute('data-ready','1');
})();
"""

LEGEND = (
    '<svg class="flow" width="860" height="24" role="img" aria-label="legend">'
    '<circle class="s2" cx="8" cy="12" r="5"/><text x="16" y="16">2xx</text>'
    '<circle class="s4" cx="48" cy="12" r="5"/><text x="56" y="16">4xx</text>'
    '<circle class="rl" cx="88" cy="12" r="5"/><text x="96" y="16">429 / 418</text>'
    '<circle class="s5" cx="150" cy="12" r="5"/><text x="158" y="16">5xx</text>'
    '<circle class="sx" cx="190" cy="12" r="5"/><text x="198" y="16">transport error</text>'
    '<circle class="s2" cx="290" cy="12" r="5"/><circle class="ring" cx="290" cy="12" r="8"/>'
    '<text x="302" y="16">retry</text><path class="flt" d="M340 8h10l-5 7z"/><text x="354" y="16">fault</text>'
    '<rect class="slp" x="392" y="3" width="10" height="18"/><text x="406" y="16">sleep</text>'
    '<circle class="cr" cx="450" cy="12" r="4.5"/><text x="458" y="16">cache read</text>'
    '<rect class="cw" x="520" y="7.5" width="9" height="9"/><text x="534" y="16">cache write</text>'
    '<rect class="cw bad" x="602" y="7.5" width="9" height="9"/><text x="616" y="16">invalid file</text>'
    '<path class="cd" d="M686 8l8 8m0-8l-8 8"/><text x="700" y="16">delete</text>'
    '<path class="fetch" d="M746 2V22"/><text x="752" y="16">fetch starts</text></svg>'
)
