import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, html, joinHtml, prettyJson, toText } from '../../src/dashboard/html.js';

const HOSTILE = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' onmouseover='alert(1)",
  '`${alert(1)}`',
  '&lt;already&gt;',
];

describe('dashboard escaping', () => {
  it('escapes the characters that open markup or end an attribute', () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&\``),
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;',
    );
  });

  it('escapes every value put into a template, in content and in attributes', () => {
    for (const value of HOSTILE) {
      const text = toText(html`<p title="${value}">${value}</p>`);
      // The only markup left is the template's own: one element, two quotes.
      assert.equal(text.match(/</g)?.length, 2);
      assert.equal(text.match(/"/g)?.length, 2);
      assert.doesNotMatch(text, /'/);
      assert.equal(text, `<p title="${escapeHtml(value)}">${escapeHtml(value)}</p>`);
    }
  });

  it('keeps markup made by the tag, and escapes arrays element by element', () => {
    const inner = html`<b>${'<i>'}</b>`;
    assert.equal(toText(html`<p>${inner}</p>`), '<p><b>&lt;i&gt;</b></p>');
    assert.equal(toText(html`${['<a>', inner]}`), '&lt;a&gt;<b>&lt;i&gt;</b>');
    assert.equal(toText(joinHtml(['<x>', inner], ', ')), '&lt;x&gt;, <b>&lt;i&gt;</b>');
  });

  it('does not take an object that looks like markup for markup', () => {
    const forged = JSON.parse('{"text":"<script>alert(1)</script>"}') as unknown;
    assert.equal(toText(html`${forged}`), '[object Object]');
  });

  it('writes null, undefined and false as nothing, numbers as text', () => {
    assert.equal(toText(html`${null}${undefined}${false}${0}`), '0');
  });

  it('formats JSON, which the tag then escapes', () => {
    const text = toText(
      html`<pre>${prettyJson({ html: '</pre><script>alert(1)</script>' })}</pre>`,
    );
    assert.ok(text.includes('&lt;/pre&gt;&lt;script&gt;'));
    assert.equal(prettyJson(undefined), 'null');
  });
});
