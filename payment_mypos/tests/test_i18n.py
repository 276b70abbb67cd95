# Part of payment_mypos. License LGPL-3.
"""The translation template is what Odoo exports, and the Bulgarian translation covers it."""

import io
import re
from pathlib import Path

import polib

from odoo.exceptions import UserError
from odoo.modules.module import get_manifest
from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import trans_export

from odoo.addons.payment_mypos import compat, const, ipc, utils
from odoo.addons.payment_mypos.tests.common import MyPOSCommon

I18N_DIR = Path(__file__).resolve().parent.parent / 'i18n'
POT_PATH = I18N_DIR / 'payment_mypos.pot'
REGENERATE = (
    "Regenerate it with `tools/i18n` (Odoo's exporter of each installed series on a scratch "
    "database, merged into one template), then translate the new terms in payment_mypos/i18n/*.po."
)
AUTOMATIC_FIELD = re.compile(
    r'^model:ir\.model\.fields,\w+:payment_mypos\.field_\w+__(id|display_name)$'
)
# printf-style placeholders as Odoo's `_` formats them: %(name)s or positional %s / %d.
PLACEHOLDER = re.compile(r'%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdifr%])')


def _terms(po, series=None):
    """{msgid: (sorted occurrences, sorted extracted comments)} of a catalog, header excluded.

    With `series`, only the terms that series exports: tools/i18n marks a term that only some
    series export with one "series: X" comment per series (the .pot serves 18.0 and 19.0).
    """
    terms = {}
    for entry in po:
        if not entry.msgid or entry.obsolete:
            continue
        comments = entry.comment.splitlines()
        marked = {line.split(':', 1)[1].strip() for line in comments if line.startswith('series:')}
        if series and marked and series not in marked:
            continue
        # Odoo's automatic fields (id, display_name): which of them an export lists depends on
        # the series and on the other modules installed, not on payment_mypos.
        occurrences = [
            f'{path}:{line}' if line else path
            for path, line in entry.occurrences
            if not AUTOMATIC_FIELD.match(path)
        ]
        if occurrences:
            terms[entry.msgid] = (
                sorted(occurrences),
                sorted(line for line in comments if not line.startswith('series:')),
            )
    return terms


def _dependencies(module):
    """`module` and every module it depends on, directly or not."""
    found, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(get_manifest(name).get('depends', []))
    return found


def _standalone_modules(installed):
    """The modules of a database where only payment_mypos was installed: its dependencies and
    the modules they auto-install (among `installed`)."""
    modules = _dependencies('payment_mypos')
    changed = True
    while changed:
        changed = False
        for name in sorted(set(installed) - modules):
            manifest = get_manifest(name)
            auto_install = manifest.get('auto_install')
            if not auto_install:
                continue
            trigger = set(manifest.get('depends', []))
            if not isinstance(auto_install, bool):
                trigger = set(auto_install)
            if trigger <= modules:
                modules |= _dependencies(name)
                changed = True
    return modules


def _placeholders(text):
    """The placeholders of `text` as a sorted list ('%%' excluded)."""
    return sorted(
        f'%({name})' if name else f'%{kind}'
        for name, kind in PLACEHOLDER.findall(text)
        if kind != '%'
    )


@tagged('post_install', '-at_install')
class TestTranslationTemplate(TransactionCase):
    def _exported_catalog(self):
        """What Odoo exports for payment_mypos in this database, less the fields that other
        modules add to its models. This database may have more modules installed than the one
        `tools/i18n` exports from (payment_mypos, its dependencies and what they auto-install):
        e.g. rating adds `rating_ids` to every mail.thread of a model payment_mypos defines."""
        buffer = io.BytesIO()
        trans_export(
            None, ['payment_mypos'], buffer, 'po', self.env if compat.ODOO_19 else self.env.cr
        )
        catalog = polib.pofile(buffer.getvalue().decode())
        installed = self.env['ir.module.module'].search([('state', '=', 'installed')])
        dependencies = _standalone_modules(installed.mapped('name'))
        field_terms = re.compile(r'^model:ir\.model\.fields,\w+:(payment_mypos\.field_\w+)$')

        def from_dependencies(occurrence):
            match = field_terms.match(occurrence[0])
            if not match:
                return True
            record = self.env.ref(match.group(1), raise_if_not_found=False)
            if not record or record.model not in self.env:
                return True
            field = self.env[record.model]._fields.get(record.name)
            return field is None or bool(set(field._modules) & dependencies)

        for entry in list(catalog):
            entry.occurrences = [occ for occ in entry.occurrences if from_dependencies(occ)]
            if entry.msgid and not entry.occurrences:
                catalog.remove(entry)
        return catalog

    def test_pot_is_up_to_date(self):
        """payment_mypos.pot holds exactly the terms Odoo exports for the installed module."""
        exported = _terms(self._exported_catalog())
        committed = _terms(polib.pofile(str(POT_PATH)), compat.SERIES)

        added = sorted(set(exported) - set(committed))
        removed = sorted(set(committed) - set(exported))
        # The .pot lists where any series finds a term: this series' places must be among them.
        moved = sorted(
            msgid
            for msgid in set(exported) & set(committed)
            if not set(exported[msgid][0]) <= set(committed[msgid][0])
            or exported[msgid][1] != committed[msgid][1]
        )
        problems = [f"new term: {msgid!r}" for msgid in added]
        problems += [f"term no longer exported: {msgid!r}" for msgid in removed]
        problems += [
            f"term {msgid!r} now at {exported[msgid][0]} (.pot: {committed[msgid][0]})"
            for msgid in moved
        ]
        if problems:
            self.fail(
                f"{POT_PATH.relative_to(I18N_DIR.parent.parent)} is out of date "
                f"({len(problems)} difference(s)):\n  "
                + "\n  ".join(problems[:30])
                + ("\n  ..." if len(problems) > 30 else "")
                + f"\n{REGENERATE}"
            )


@tagged('post_install', '-at_install')
class TestBulgarianTranslation(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pot = polib.pofile(str(POT_PATH))
        cls.po = polib.pofile(str(I18N_DIR / 'bg.po'))

    def test_header(self):
        self.assertEqual(self.po.metadata.get('Language'), 'bg')
        self.assertEqual(self.po.metadata.get('Plural-Forms'), 'nplurals=2; plural=(n != 1);')
        self.assertIn('charset=UTF-8', self.po.metadata.get('Content-Type', ''))

    def test_every_term_is_translated(self):
        """bg.po translates every term of the .pot (no missing, empty or fuzzy entry) and
        holds no term the .pot no longer has."""
        translations = {entry.msgid: entry for entry in self.po if not entry.obsolete}
        template = {entry.msgid for entry in self.pot if entry.msgid}
        missing = sorted(template - set(translations))
        untranslated = sorted(
            msgid
            for msgid in template & set(translations)
            if not translations[msgid].msgstr.strip() or 'fuzzy' in translations[msgid].flags
        )
        stale = sorted(set(translations) - template - {''})
        self.assertFalse(missing, f"terms of the .pot missing from bg.po: {missing}")
        self.assertFalse(untranslated, f"terms empty or fuzzy in bg.po: {untranslated}")
        self.assertFalse(stale, f"terms of bg.po that the .pot no longer has: {stale}")

    def test_placeholders_match(self):
        """Each translation keeps the placeholders of its term, so that formatting it with the
        same arguments works."""
        wrong = [
            (entry.msgid, entry.msgstr)
            for entry in self.po
            if entry.msgid
            and entry.msgstr
            and _placeholders(entry.msgid) != _placeholders(entry.msgstr)
        ]
        self.assertFalse(wrong, f"placeholders differ in bg.po: {wrong}")

    def test_markup_matches(self):
        """Translations of view terms keep their HTML tags."""
        tags = re.compile(r'</?[a-zA-Z][^>]*>')
        wrong = [
            entry.msgid
            for entry in self.po
            if entry.msgid and tags.findall(entry.msgid) != tags.findall(entry.msgstr)
        ]
        self.assertFalse(wrong, f"HTML tags differ in bg.po: {wrong}")

    def test_odoo_uses_the_translation(self):
        """With Bulgarian active, Odoo shows the module's messages and field labels in
        Bulgarian."""
        self.env['res.lang']._activate_lang('bg_BG')
        self.env['ir.module.module']._load_module_terms(['payment_mypos'], ['bg_BG'])
        env_bg = self.env(context=dict(self.env.context, lang='bg_BG'))
        provider = env_bg['payment.provider'].search([('code', '!=', 'mypos')], limit=1)
        self.assertTrue(provider, "a non-myPOS provider is needed for this test")
        with self.assertRaises(UserError) as caught:
            provider.action_mypos_test_connection()
        self.assertEqual(str(caught.exception), "myPOS: Това не е доставчик myPOS.")
        field = env_bg['payment.provider']._fields['mypos_sid']
        self.assertEqual(field.get_description(env_bg)['string'], "ИД на магазина в myPOS (SID)")


# Three or more Latin words in a row: an English sentence (or a piece of one). Bulgarian
# sentences only carry single Latin names (myPOS, SID, RSA, a method) and the values shown.
ENGLISH_RUN = re.compile(r"[A-Za-z]{2,}(?:'[a-z]+)?(?:[ ,]+[A-Za-z]{2,}(?:'[a-z]+)?){2,}")


@tagged('post_install', '-at_install')
class TestExplainedInBulgarian(MyPOSCommon):
    """What an administrator reads about a failed call, a refused refund or a logged exchange
    comes in Bulgarian whole: myPOS's status codes and the protocol's errors are translated
    tables, not English sentences set inside translated ones."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env['res.lang']._activate_lang('bg_BG')
        cls.env['ir.module.module']._load_module_terms(['payment_mypos'], ['bg_BG'])
        cls.env_bg = cls.env(context=dict(cls.env.context, lang='bg_BG'))
        cls.provider_bg = cls.provider.with_env(cls.env_bg)
        # Never the Internet: server calls go to a closed port on loopback.
        cls.env['ir.config_parameter'].sudo().set_param(
            'payment_mypos.sandbox_url', 'http://127.0.0.1:9/vmp/checkout-test'
        )

    def assertBulgarian(self, text, *values):
        """`text` holds no English run once the values it quotes (URLs, myPOS's words) are out."""
        for value in values:
            text = text.replace(str(value), '')
        self.assertFalse(ENGLISH_RUN.findall(text), text)
        self.assertRegex(text, '[а-яА-Я]', text)

    def _errors(self):
        """One instance of every protocol error an administrator can be shown."""
        url = 'http://127.0.0.1:9/vmp/checkout-test'
        key_error = ipc.InvalidKey('x', code='private_key_unreadable', detail='')
        params = {
            'limit': 100,
            'detail': '',
            'name': 'OrderID',
            'position': 2,
            'method': 'IPCRefund',
            'amount': '1,5',
            'decimals': 2,
            'depth': 4,
            'keys': 'pk',
            'reason': key_error,
            'url': url,
            'seconds': 10,
            'error': 'ConnectTimeout',
            'http_status': 502,
            'size': 1024,
        }
        for code in const.PROTOCOL_ERRORS:
            if code.startswith('remote_'):
                kind = code.removeprefix('remote_')
                kind = 'garbage' if kind in ('too_large', 'layout') else kind
                yield code, ipc.RemoteError(kind, 'x', code=code, **params)
            else:
                yield code, ipc.IPCError('x', code=code, **params)
        for status in ipc.Status:
            tree = [('Status', str(status.value)), ('StatusMsg', 'Some words of myPOS')]
            if status:
                yield (
                    status.name,
                    ipc.RemoteError('status', 'x', status=str(status.value), tree=tree),
                )
        yield 'unsigned', ipc.RemoteError('unsigned', 'x', status='4', tree=tree)

    def test_protocol_errors_and_statuses(self):
        for code, error in self._errors():
            with self.subTest(code=code):
                text = utils.explain_error(self.env_bg, error)
                self.assertBulgarian(
                    text, 'http://127.0.0.1:9/vmp/checkout-test', 'Some words of myPOS'
                )

    def test_connection_test_failures(self):
        """Every failure of "Test connection", as the administrator reads it."""
        credentials = self.provider._mypos_get_credentials()
        url = 'http://127.0.0.1:9/vmp/checkout-test'
        for code, error in self._errors():
            if not isinstance(error, ipc.RemoteError):
                continue
            with self.subTest(code=code):
                text = self.provider_bg._mypos_explain_connection_error(error, credentials, url)
                self.assertBulgarian(text, url, 'Some words of myPOS')
        success, outcome = self.provider_bg._mypos_test_connection()  # The closed port.
        self.assertFalse(success)
        self.assertBulgarian(outcome, url)

    def test_refund_errors_and_log_outcomes(self):
        """A refund refused or without an answer, and what the myPOS log says about it."""
        tx = self._create_mypos_transaction(reference='I18N-REFUND')
        tx._set_done()
        tx.provider_reference = '410227'
        refund = tx._create_child_transaction(10.0, is_refund=True).with_env(self.env_bg)
        for code, error in self._errors():
            if not isinstance(error, ipc.RemoteError):
                continue
            with self.subTest(code=code):
                refund._mypos_apply_call_failure(ipc.const.REFUND_METHOD, error)
                self.assertBulgarian(
                    refund.state_message,
                    'http://127.0.0.1:9/vmp/checkout-test',
                    'Some words of myPOS',
                )
        # A real call to the closed port: sent, then no answer, both logged in Bulgarian.
        try:  # Not assertRaises: Odoo's rolls back what happened inside it.
            self.provider_bg._mypos_make_request(
                ipc.const.REFUND_METHOD, [('OrderID', 'I18N_1')], tx=refund
            )
        except ipc.RemoteError as error:
            self.assertIs(error.kind, ipc.Failure.UNREACHABLE)
        else:
            self.fail("the closed port answered")
        outcomes = (
            self.env['payment.mypos.log']
            .search([('transaction_id', '=', refund.id)])
            .mapped('outcome')
        )
        self.assertEqual(len(outcomes), 2, outcomes)
        for outcome in outcomes:
            kind, _colon, text = outcome.partition(': ')
            self.assertBulgarian(text or kind, 'http://127.0.0.1:9/vmp/checkout-test')

    def test_odd_statuses_are_explained(self):
        """A `Status` that is not ASCII digits, or none at all, is explained, never a crash: the
        explanation runs where a refund or a status check handles a failed call."""
        for status in ('²', '①', '٢٠', '-1', '', None, [('x', 'y')]):
            with self.subTest(status=status):
                text = utils.explain_status(self.env_bg, status)
                self.assertIn('неизвестен статус', text)
                error = ipc.RemoteError('status', 'x', status=status)
                self.assertIn('неизвестен статус', utils.explain_error(self.env_bg, error))
        tx = self._create_mypos_transaction(reference='I18N-ODD')
        tx._set_done()
        refund = tx._create_child_transaction(10.0, is_refund=True)
        refund.with_env(self.env_bg)._mypos_apply_call_failure(
            ipc.const.REFUND_METHOD, ipc.RemoteError('unsigned', 'x', status='²')
        )
        self.assertEqual(refund.state, 'pending')
