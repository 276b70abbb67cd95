# Part of payment_mypos. License LGPL-3.
{
    'name': "Payment Provider: myPOS",
    'version': '1.4.0',  # Odoo prefixes the series it runs on: 18.0.1.4.0, 19.0.1.4.0.
    'category': 'Accounting/Payment Providers',
    'sequence': 350,
    'summary': "Accept cards, iDEAL, TWINT, Satispay and IRIS on myPOS's hosted checkout page.",
    'author': "payment_mypos contributors",
    'website': "https://www.mypos.com",
    'depends': ['mail', 'payment'],
    'external_dependencies': {'python': ['asn1crypto', 'cryptography']},
    'data': [
        'security/ir.model.access.csv',
        'security/payment_mypos_security.xml',
        'views/payment_mypos_templates.xml',
        'views/payment_provider_views.xml',
        'views/payment_transaction_views.xml',
        'wizards/payment_mypos_disconnect_wizard_views.xml',
        'data/payment_method_data.xml',
        'data/payment_provider_data.xml',
        'data/ir_cron_data.xml',
    ],
    'post_init_hook': 'post_init_hook',
    'uninstall_hook': 'uninstall_hook',
    'license': 'LGPL-3',
}
