"""The operations console: staff pages under ``/console``, admins only.

Same app, same cookie session and CSRF rules as the storefront; a logged-in
customer gets a 403 page, a visitor the login page. Each page calls the same
code as the admin REST routes (``/admin/...``, ``/products``, ``/orders``),
so a rule is never stated twice.
"""
