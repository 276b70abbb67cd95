# Part of payment_mypos. License LGPL-3.

import logging

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .. import const, ipc, utils

_logger = logging.getLogger(__name__)


class PaymentProvider(models.Model):
    _inherit = 'payment.provider'

    code = fields.Selection(selection_add=[('mypos', "myPOS")], ondelete={'mypos': 'set default'})
    mypos_sid = fields.Char(
        string="myPOS Store ID (SID)",
        help="The Store ID from myPOS's dashboard (Online stores). In test mode, leave empty to "
        "use myPOS's public sandbox store.",
        groups='base.group_system',
        copy=False,  # A store's credentials stay with its company (19.0 copies providers).
    )
    mypos_wallet_number = fields.Char(
        string="myPOS Wallet Number",
        help="Your myPOS client number (11 digits). In test mode, leave empty to use the sandbox.",
        groups='base.group_system',
        copy=False,
    )
    mypos_key_index = fields.Integer(
        string="myPOS Key Index",
        help="The index myPOS gave your store's public key (1 to 99; use the latest one). In test "
        "mode, 0 uses the sandbox's key index.",
        groups='base.group_system',
        copy=False,
    )
    # The stored secret. No view shows it and no browser ever receives it: the form edits it
    # through `mypos_private_key`, which reads as empty.
    mypos_private_key_pem = fields.Text(
        string="myPOS Store Private Key (stored)",
        groups='base.group_system',
        copy=False,
    )
    mypos_private_key = fields.Char(
        string="myPOS Store Private Key",
        help="The RSA private key (PEM) whose certificate you uploaded to myPOS. It is never shown "
        "again: leave it blank to keep the stored key. In test mode, empty uses the sandbox.",
        compute='_compute_mypos_private_key',
        inverse='_inverse_mypos_private_key',
        groups='base.group_system',
    )
    mypos_private_key_info = fields.Char(
        string="myPOS Stored Key",
        compute='_compute_mypos_private_key',
        groups='base.group_system',
    )
    mypos_public_certificate = fields.Text(
        string="myPOS Certificate",
        help="myPOS's public certificate (or its bare public key), PEM, from the store's Keys "
        "page. It verifies what myPOS sends. In test mode, empty uses the sandbox certificate.",
        groups='base.group_system',
        copy=False,
    )
    # Write-only, like the private key: pasting a pack fills the five fields above on save.
    mypos_configuration_pack = fields.Text(
        string="myPOS Configuration Pack",
        help="The base64 Configuration Pack from myPOS's dashboard (Online stores > your store > "
        "Keys). Importing it replaces the Store ID, wallet number, key index, store private "
        "key and myPOS certificate.",
        compute='_compute_mypos_configuration_pack',
        inverse='_inverse_mypos_configuration_pack',
        groups='base.group_system',
    )
    mypos_environment_warning = fields.Text(
        string="myPOS Environment Warning",
        compute='_compute_mypos_environment_warning',
        groups='base.group_system',
    )
    # What is left of the store after a disconnection: the notifications of payments started
    # before it still name this store, and are still accepted (see `_mypos_get_credentials`).
    mypos_disconnected_sid = fields.Char(
        string="myPOS Disconnected Store ID",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_date = fields.Datetime(
        string="myPOS Last Connection Test",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_result = fields.Text(
        string="myPOS Last Test Outcome",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )
    mypos_last_test_success = fields.Boolean(
        string="myPOS Last Test Succeeded",
        readonly=True,
        copy=False,
        groups='base.group_system',
    )

    mypos_shopper_chooses = fields.Boolean(
        string="Let the Shopper Choose on myPOS's Page",
        help="Send myPOS every payment method enabled here that the shopper's currency and "
        "country allow, and let the shopper choose on myPOS's page; otherwise myPOS's page opens "
        "the method chosen on Odoo's payment form. The method used is read from myPOS's "
        "notification.",
    )

    # Capabilities, shown on the form: what the module does today (nothing stored).
    mypos_online_payments = fields.Boolean(
        string="Online Payments",
        help="myPOS's hosted payment page at checkout, in the portal and on payment links.",
        compute='_compute_mypos_capabilities',
    )
    mypos_terminal_payments = fields.Boolean(
        string="Terminal Payments",
        help="Payments on myPOS card terminals. Coming soon.",
        compute='_compute_mypos_capabilities',
    )

    # === COMPUTE METHODS ===#

    @api.depends('code')
    def _compute_mypos_capabilities(self):
        for provider in self:
            provider.mypos_online_payments = provider.code == 'mypos'
            provider.mypos_terminal_payments = False

    def _compute_mypos_configuration_pack(self):
        for provider in self:
            provider.mypos_configuration_pack = False

    def _inverse_mypos_configuration_pack(self):
        """Import a pasted pack; a blank one changes nothing."""
        for provider in self:
            pack = (provider.mypos_configuration_pack or '').strip()
            if pack:
                provider._mypos_import_configuration_pack(pack)
        # Like the private key, the pack (which holds it) is never echoed back.
        self.invalidate_recordset(['mypos_configuration_pack'])

    @api.depends('code', 'state', 'mypos_sid', 'mypos_wallet_number')
    def _compute_mypos_environment_warning(self):
        for provider in self:
            provider.mypos_environment_warning = (
                provider.code == 'mypos' and provider._mypos_get_environment_warning()
            ) or False

    @api.depends('mypos_private_key_pem')
    def _compute_mypos_private_key(self):
        for provider in self:
            provider.mypos_private_key = False
            pem = provider.mypos_private_key_pem
            if not pem:
                provider.mypos_private_key_info = _(
                    "No key stored (test mode signs with myPOS's public sandbox key)"
                )
                continue
            try:
                key = ipc.load_private_key(pem)
            except ipc.InvalidKey:
                provider.mypos_private_key_info = _("A key is stored but cannot be read")
                continue
            provider.mypos_private_key_info = _(
                "RSA %(bits)s-bit key stored (public key SHA-256 %(fp)s)",
                bits=key.key_size,
                fp=ipc.fingerprint(pem),
            )

    def _inverse_mypos_private_key(self):
        """Store a newly entered key; a blank entry keeps the stored one."""
        for provider in self:
            value = (provider.mypos_private_key or '').strip()
            if not value:
                continue
            try:
                pem = ipc.normalize_pem(value)
                ipc.load_private_key(pem)
            except ipc.InvalidKey as error:
                raise ValidationError(
                    _(
                        "myPOS: The store private key is not valid: %s",
                        utils.explain_error(self.env, error),
                    )
                ) from None
            provider.mypos_private_key_pem = pem
        # Forget the entered value, so that not even the answer to this save echoes it back.
        self.invalidate_recordset(['mypos_private_key'])

    # === CONSTRAINT METHODS ===#

    @api.constrains(
        'state',
        'code',
        'mypos_sid',
        'mypos_wallet_number',
        'mypos_key_index',
        'mypos_private_key',
        'mypos_private_key_pem',
        'mypos_public_certificate',
    )
    def _check_mypos_credentials(self):
        """Check the credentials: all required when enabled, valid whenever given."""
        for provider in self.filtered(lambda p: p.code == 'mypos' and p.state != 'disabled'):
            if provider.state == 'enabled':
                missing = [
                    provider._fields[name].string
                    for name in (
                        'mypos_sid',
                        'mypos_wallet_number',
                        'mypos_key_index',
                        'mypos_private_key_pem',
                        'mypos_public_certificate',
                    )
                    if not provider[name]
                ]
                if missing:
                    raise ValidationError(
                        _("myPOS: To enable myPOS, fill in: %s.", ", ".join(missing))
                    )
            try:
                ipc.check_credentials(provider._mypos_get_credentials())
            except ipc.IPCError as error:
                raise ValidationError(
                    _("myPOS: Invalid credentials: %s.", utils.explain_error(self.env, error))
                ) from None

    # === CRUD METHODS ===#

    def write(self, vals):
        """Override of `payment` to forget the parsed keys when the key material changes."""
        res = super().write(vals)
        if {
            'mypos_private_key',
            'mypos_private_key_pem',
            'mypos_public_certificate',
            'mypos_configuration_pack',
        } & set(vals):
            ipc.forget_keys()
        return res

    # === BUSINESS METHODS ===#

    def _mypos_get_credentials(self):
        """Return the store credentials; in test state, empty ones fall back to the sandbox.

        Note: self.ensure_one()

        :rtype: ipc.Credentials
        """
        self.ensure_one()

        def pick(value, fallback, states):
            return value or (fallback() if self.state in states else value)

        # What verifies myPOS's messages also falls back when disabled, so that a disconnected
        # provider still applies the notifications of payments under way; what signs requests
        # falls back in test state only, so a disabled provider never signs with the sandbox key.
        verifying, signing = ('test', 'disabled'), ('test',)
        sid = self.mypos_sid or (self.state == 'disabled' and self.mypos_disconnected_sid)
        return ipc.Credentials(
            sid=pick(sid, lambda: ipc.const.SANDBOX_SID, verifying),
            wallet_number=pick(
                self.mypos_wallet_number, lambda: ipc.const.SANDBOX_WALLET_NUMBER, signing
            ),
            key_index=pick(self.mypos_key_index, lambda: ipc.const.SANDBOX_KEY_INDEX, signing),
            private_key=pick(
                self.mypos_private_key_pem,
                utils.sandbox_private_key,
                signing,
            ),
            certificate=pick(
                self.mypos_public_certificate,
                utils.sandbox_certificate,
                verifying,
            ),
        )

    @staticmethod
    def _mypos_is_sandbox_certificate(certificate):
        """Tell whether a certificate (or public key) holds myPOS's public sandbox key."""
        return ipc.same_public_key(certificate, utils.sandbox_certificate())

    def _mypos_get_api_url(self):
        """Return the myPOS endpoint of the provider's state.

        In test state the system parameter `payment_mypos.sandbox_url` may replace the sandbox
        (a local emulator); live always uses myPOS's production endpoint.
        """
        self.ensure_one()
        if self.state == 'enabled':
            return ipc.const.PRODUCTION_URL
        override = self.env['ir.config_parameter'].sudo().get_param('payment_mypos.sandbox_url')
        return (override or '').strip() or ipc.const.SANDBOX_URL

    def _mypos_make_request(self, method, params, tx=None):
        """Send a signed server-to-server call to myPOS and return its verified answer.

        The call is built and signed once; with `tx`, what was sent and what came back (or why
        nothing usable did) go to that transaction's myPOS log. A failure's `kind` says whether
        myPOS may have acted on the call (`ipc.Failure.may_have_moved_money`).

        Note: self.ensure_one()

        :param str method: `IPCGetTxnStatus`, `IPCRefund`, ...
        :param list params: The call's own (name, value) pairs, in posting order.
        :param recordset tx: The `payment.transaction` the call is about, if any.
        :return: The answer, verified, with status 0 and read against its layout.
        :rtype: ipc.Message
        :raise ipc.RemoteError: If myPOS cannot be reached in time, or its answer is not a
                                correctly signed success.
        """
        call = self._mypos_start_call(method, params, tx=tx)
        return self._mypos_finish_call(call, *call.outcome(), tx=tx)

    def _mypos_start_call(self, method, params, tx=None):
        """Build and sign a call once and log it as sent; it is sent by `ipc.transport`, in this
        thread or another one (the status check overlaps its calls).

        Note: self.ensure_one()

        :rtype: ipc.transport.Call
        """
        self.ensure_one()
        credentials = self._mypos_get_credentials()
        call = ipc.transport.Call(
            method=method,
            url=self._mypos_get_api_url(),
            fields=tuple(ipc.build_request(credentials, method, params, source=const.SOURCE)),
            certificate=credentials.certificate,
            user_agent=const.USER_AGENT,
        )
        order_id = ipc.get_field(params, 'OrderID')
        if tx:
            self.env['payment.mypos.log']._mypos_add(
                tx, 'out', method, list(call.fields), order_id=order_id, outcome=_("Sent")
            )
        _logger.info("Sending %s to %s for %s", method, call.url, tx.reference if tx else order_id)
        return call

    def _mypos_finish_call(self, call, answer, error, tx=None):
        """Log what came back for a call and return the answer, or raise the failure.

        :param ipc.transport.Call call: The call, as `_mypos_start_call` made it.
        :param ipc.Message answer: The verified answer, if any.
        :param ipc.RemoteError error: Why there is none, if so.
        :rtype: ipc.Message
        :raise ipc.RemoteError: `error`, once logged.
        """
        order_id = ipc.get_field(call.fields, 'OrderID')
        log = self.env['payment.mypos.log']
        if error is not None:
            _logger.warning("%s to %s failed: %s", call.method, call.url, error)
            if tx:
                outcome = f"{error.kind.value}: {utils.explain_error(self.env, error)}"
                log._mypos_add(
                    tx, 'in', call.method, error.tree, order_id=order_id, outcome=outcome
                )
            raise error
        _logger.info("myPOS answered %s for %s: status %s", call.method, order_id, answer.status)
        if tx:
            log._mypos_add(
                tx,
                'in',
                call.method,
                list(answer.pairs),
                order_id=order_id,
                outcome=_("Signed answer, status 0 (%s)", answer.status_msg),
            )
        return answer

    # The compute method of `payment` returns nothing; there is nothing to pass on.
    def _compute_feature_support_fields(self):  # pylint: disable=missing-return
        """Override of `payment` to enable partial refunds (`IPCRefund`,
        https://developers.mypos.com/apis/checkout-api/refund), saved cards (`CardTokenRequest`
        of https://developers.mypos.com/apis/checkout-api/purchase, and `IPCIAPurchase`) and
        manual capture of the full amount (https://developers.mypos.com/apis/checkout-api/
        pre-authorization: myPOS releases what a completion leaves, which Odoo's partial capture
        would keep authorised)."""
        super()._compute_feature_support_fields()
        self.filtered(lambda p: p.code == 'mypos').update(
            {
                'support_refund': 'partial',
                'support_tokenization': True,
                'support_manual_capture': 'full_only',
            }
        )

    @api.constrains('capture_manually', 'payment_method_ids')
    def _check_mypos_capture_cards_only(self):
        """Refuse manual capture while a method other than cards is enabled: myPOS pre-authorises
        cards only (19.0 says so with its methods' `support_manual_capture`, 18.0 here)."""
        for provider in self.filtered(lambda p: p.code == 'mypos' and p.capture_manually):
            others = provider.payment_method_ids.filtered(
                lambda m: m.active and (m.primary_payment_method_id or m).code != 'card'
            )
            if others:
                raise ValidationError(
                    _(
                        "myPOS: Capture Amount Manually pre-authorises cards only: disable %s "
                        "first.",
                        ", ".join(others.mapped('name')),
                    )
                )

    @api.constrains('capture_manually', 'allow_tokenization')
    def _check_mypos_capture_without_saved_cards(self):
        """Refuse manual capture together with saved cards: myPOS's pre-authorisation cannot save
        the card (it has no CardTokenRequest) and a saved card's charge is no authorisation."""
        for provider in self:
            both = provider.capture_manually and provider.allow_tokenization
            if provider.code == 'mypos' and both:
                raise ValidationError(
                    _(
                        "myPOS: Capture Amount Manually and saved cards cannot be combined: "
                        "myPOS's pre-authorisation cannot save the card, and a saved card is "
                        "charged at once, never authorised. Turn one of them off."
                    )
                )

    def _get_supported_currencies(self):
        """Override of `payment` to return the currencies myPOS accepts."""
        supported_currencies = super()._get_supported_currencies()
        if self.code == 'mypos':
            supported_currencies = supported_currencies.filtered(
                lambda c: c.name in ipc.const.SUPPORTED_CURRENCIES
            )
        return supported_currencies

    def _get_default_payment_method_codes(self):
        """Override of `payment` to return the default payment method codes."""
        default_codes = super()._get_default_payment_method_codes()
        if self.code != 'mypos':
            return default_codes
        return const.DEFAULT_PAYMENT_METHOD_CODES
