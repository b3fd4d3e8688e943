"""The front page's findings table links every chapter it cites, and each link opens that
chapter (issue: a front page that answers).

On the rendered introduction, every row of the findings table has a link in its last
column; the link's text is the chapter's number, the page it opens exists on the server
and its title carries the same number (the book is numbered, ``_toc.yml``).
"""

from __future__ import annotations

import re
import urllib.request

ROWS = """() => {
  const table = [...document.querySelectorAll('article table')].find(t =>
    [...t.querySelectorAll('th')].some(h => h.textContent.trim() === 'chapter'));
  if (!table) return null;
  const col = [...table.querySelectorAll('thead th')]
    .findIndex(h => h.textContent.trim() === 'chapter');
  return [...table.querySelectorAll('tbody tr')].map(tr => {
    const cell = tr.children[col];
    const a = cell && cell.querySelector('a');
    return {claim: tr.children[0].textContent.trim(),
            text: cell ? cell.textContent.trim() : '',
            href: a ? a.href : null};
  });
}"""


def test_findings_table_links_every_chapter_it_cites(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(server.url + "book/intro.html")
        page.wait_for_load_state("load")
        rows = page.evaluate(ROWS)
        assert rows, "the introduction has no findings table with a 'chapter' column"
        titles = {}
        for row in rows:
            where = f"finding {row['claim']!r}"
            assert row["href"], f"{where}: cites chapter {row['text']!r} with no link"
            number = re.fullmatch(r"\d+", row["text"])
            assert number, f"{where}: chapter cell {row['text']!r} is not a number"
            target = row["href"].split("#")[0]
            if target not in titles:
                with urllib.request.urlopen(target) as r:
                    assert r.status == 200, f"{where}: {target} answers {r.status}"
                page2 = browser.new_page()
                page2.goto(target)
                titles[target] = page2.locator("article h1").first.inner_text()
                page2.close()
            assert titles[target].startswith(row["text"] + "."), (
                f"{where}: links {target}, whose title is {titles[target]!r}, "
                f"not chapter {row['text']}"
            )
    finally:
        page.close()
